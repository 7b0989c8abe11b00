"""predictions.input_vector: the model's input as scored, packed float32

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08 03:40:00

The feature log reads a window's rows not yet mirrored to Parquet from ``predictions``;
the packed vector (the model's features in its own order, 4 bytes each) reads without
parsing JSON. Nullable: older rows, and rows logged with the setting off, keep JSON only
(shared/adapters/feature_log/vectors.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("input_vector", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("input_vector")
