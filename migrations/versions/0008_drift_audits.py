"""drift audits: one row per audit of a model over a window

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 01:50:00

Each audit records its window (a label such as 24h, or custom), status, the count of
predictions read and where its result JSON and HTML report are stored. The latest audit
of a model and window is one index probe.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db.types

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = shared.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drift_audits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("window", sa.String(length=20), nullable=False),
        sa.Column("window_start", _TIME, nullable=False),
        sa.Column("window_end", _TIME, nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", _TIME, nullable=False),
        sa.Column("result_path", sa.String(length=500), nullable=False),
        sa.Column("report_path", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["ml_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("drift_audits", schema=None) as batch_op:
        batch_op.create_index(
            "idx_drift_audits_model_window",
            ["model_id", "window", "computed_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("drift_audits", schema=None) as batch_op:
        batch_op.drop_index("idx_drift_audits_model_window")
    op.drop_table("drift_audits")
