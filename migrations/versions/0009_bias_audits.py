"""bias audits: one row per audit of a model; bias_metrics name their audit; the
protected attributes a prediction request carried are logged beside it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 03:40:00

An audit records its source (test_set or predictions), its window for predictions,
status, the count of labelled rows read and where its result JSON and HTML report are
stored. ``predictions.protected_values`` holds the request's protected attributes
(a JSON object, null when none were given): a column apart from ``input_features`` so
that the features read by drift audits and the feature log never include them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db.types

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = shared.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bias_audits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("window", sa.String(length=20), nullable=True),
        sa.Column("window_start", _TIME, nullable=True),
        sa.Column("window_end", _TIME, nullable=True),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", _TIME, nullable=False),
        sa.Column("result_path", sa.String(length=500), nullable=False),
        sa.Column("report_path", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["ml_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("bias_audits", schema=None) as batch_op:
        batch_op.create_index(
            "idx_bias_audits_model_source",
            ["model_id", "source", "computed_at"],
            unique=False,
        )
    with op.batch_alter_table("bias_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_bias_metrics_audit_id"), ["audit_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_bias_metrics_audit_id",
            "bias_audits",
            ["audit_id"],
            ["id"],
            ondelete="CASCADE",
        )
    # a nullable column without default: no rewrite of the (partitioned) table
    op.add_column(
        "predictions",
        sa.Column(
            "protected_values",
            sa.JSON().with_variant(
                postgresql.JSONB(astext_type=sa.Text()), "postgresql"
            ),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("predictions", "protected_values")
    with op.batch_alter_table("bias_metrics", schema=None) as batch_op:
        batch_op.drop_constraint("fk_bias_metrics_audit_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_bias_metrics_audit_id"))
        batch_op.drop_column("audit_id")
    with op.batch_alter_table("bias_audits", schema=None) as batch_op:
        batch_op.drop_index("idx_bias_audits_model_source")
    op.drop_table("bias_audits")
