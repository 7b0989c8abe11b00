"""alert rules engine: rule language, alert deduplication, lifecycle and outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 04:20:00

alert_rules gain a source, the condition as given ({op, value}), a cooldown (the
deduplication window), an optional action (retrain) and a default flag. alerts gain an
occurrence count and last-seen time (a repeat within a rule's cooldown), who
acknowledged by name with a note, the dismissal reason and time, and the outbox state
of their bus message. alert_deliveries records what each bus consumer did with a
message, once per consumer and message id. The default rules are seeded here.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import shared.db.types

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = shared.db.types.UTCDateTime(timezone=True)
_JSON = shared.db.types.JSONType

# (name, source, alert type, op, value, threshold as a number, severity)
DEFAULT_RULES = [
    ("Drift warning", "drift_status", "DRIFT", "==", "WARNING", 1.0, "WARNING"),
    ("Drift critical", "drift_status", "DRIFT", ">=", "CRITICAL", 2.0, "CRITICAL"),
    ("Bias critical", "bias_metric", "BIAS", ">=", "CRITICAL", 2.0, "CRITICAL"),
    ("Latency p99 above 50 ms", "latency_p99", "LATENCY", ">", 50, 50.0, "WARNING"),
    ("Error rate above 5%", "error_rate", "PERFORMANCE", ">", 0.05, 0.05, "WARNING"),
]


def upgrade() -> None:
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column("condition", _JSON, nullable=True))
        batch_op.add_column(
            sa.Column(
                "cooldown_seconds", sa.Integer(), server_default="3600", nullable=False
            )
        )
        batch_op.add_column(sa.Column("action", _JSON, nullable=True))
        batch_op.add_column(
            sa.Column(
                "is_default", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occurrences", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("last_seen_at", _TIME, nullable=True))
        batch_op.add_column(
            sa.Column("acknowledged_by_name", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("ack_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dismissed_at", _TIME, nullable=True))
        batch_op.add_column(
            sa.Column(
                "publish_state",
                sa.String(length=20),
                server_default="PUBLISHED",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column(
                "publish_attempts", sa.Integer(), server_default="0", nullable=False
            )
        )
        batch_op.create_index(
            "idx_alerts_publish_state", ["publish_state"], unique=False
        )
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consumer", sa.String(length=50), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("alert_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=50), nullable=False),
        sa.Column("details", _JSON, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("consumer", "message_id"),
    )
    rules = sa.table(
        "alert_rules",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("alert_type", sa.String()),
        sa.column("model_id", sa.Uuid()),
        sa.column("metric_name", sa.String()),
        sa.column("operator", sa.String()),
        sa.column("threshold", sa.Float()),
        sa.column("severity", sa.String()),
        sa.column("channels", _JSON),
        sa.column("is_active", sa.Boolean()),
        sa.column("created_at", _TIME),
        sa.column("source", sa.String()),
        sa.column("condition", _JSON),
        sa.column("cooldown_seconds", sa.Integer()),
        sa.column("action", _JSON),
        sa.column("is_default", sa.Boolean()),
    )
    now = datetime.now(UTC)
    op.bulk_insert(
        rules,
        [
            {
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"shadow-hubble/rule/{name}"),
                "name": name,
                "alert_type": kind,
                "model_id": None,
                "metric_name": source,
                "operator": cmp,
                "threshold": threshold,
                "severity": severity,
                "channels": [],
                "is_active": True,
                "created_at": now,
                "source": source,
                "condition": {"op": cmp, "value": value},
                "cooldown_seconds": 3600,
                "action": None,
                "is_default": True,
            }
            for name, source, kind, cmp, value, threshold, severity in DEFAULT_RULES
        ],
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM alert_rules WHERE is_default"))
    op.drop_table("alert_deliveries")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index("idx_alerts_publish_state")
        for name in (
            "publish_attempts",
            "publish_state",
            "dismissed_at",
            "dismissed_reason",
            "ack_note",
            "acknowledged_by_name",
            "last_seen_at",
            "occurrences",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        for name in ("is_default", "action", "cooldown_seconds", "condition", "source"):
            batch_op.drop_column(name)
