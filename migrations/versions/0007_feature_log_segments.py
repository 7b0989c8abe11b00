"""The logged features' columnar mirror: its segment ledger, and the labelled rows'
index on ``predictions``

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 01:45:00

``feature_log_segments`` lists the Parquet segments that mirror ``predictions`` per
model and hour; a segment is part of the mirror once its row is committed. The partial
index ``idx_predictions_labelled`` lets a window's labels be read without the rows'
JSON (only labelled rows are in it, so scoring does not maintain it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db.types

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = shared.db.types.UTCDateTime(timezone=True)
_LABELLED = sa.text("actual_label IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "feature_log_segments",
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("hour", _TIME, nullable=False),
        sa.Column("created_from", _TIME, nullable=False),
        sa.Column("created_to", _TIME, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("written_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["ml_models.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("path"),
        sa.UniqueConstraint("model_id", "created_from", name="uq_feature_log_from"),
    )
    op.create_index(
        "idx_feature_log_model_hour",
        "feature_log_segments",
        ["model_id", "hour"],
        unique=False,
    )
    op.create_index(
        "idx_predictions_labelled",
        "predictions",
        ["model_id", "created_at", "id", "actual_label"],
        unique=False,
        sqlite_where=_LABELLED,
        postgresql_where=_LABELLED,
    )


def downgrade() -> None:
    op.drop_index("idx_predictions_labelled", table_name="predictions")
    op.drop_index("idx_feature_log_model_hour", table_name="feature_log_segments")
    op.drop_table("feature_log_segments")
