"""online feature snapshots in their own table

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 11:00:00

The head row of an entity (sequence numbers) is updated by every transaction of the
entity. With the snapshot in the same row, SQLite rewrote the whole row on each update,
overflow pages included: 6 ms for a busy merchant's 2 MB state against 18 µs for a
small row (measured here). Snapshots now live in feature_entity_snapshots, written only
when an entity is compacted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = ("namespace", "entity_type", "entity_id")


def upgrade() -> None:
    op.create_table(
        "feature_entity_snapshots",
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column("gen", sa.BigInteger(), nullable=False),
        sa.Column("snapshot_seq", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint(*_KEY),
    )
    op.execute(
        "INSERT INTO feature_entity_snapshots "
        "(namespace, entity_type, entity_id, gen, snapshot_seq, state) "
        "SELECT namespace, entity_type, entity_id, gen, snapshot_seq, state "
        "FROM feature_entity_state WHERE length(state) > 0"
    )
    with op.batch_alter_table("feature_entity_state", schema=None) as batch_op:
        batch_op.drop_column("state")


def downgrade() -> None:
    with op.batch_alter_table("feature_entity_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.LargeBinary(), nullable=False, server_default="")
        )
    op.execute(
        "UPDATE feature_entity_state SET state = (SELECT s.state FROM "
        "feature_entity_snapshots s WHERE s.namespace = feature_entity_state.namespace "
        "AND s.entity_type = feature_entity_state.entity_type "
        "AND s.entity_id = feature_entity_state.entity_id) WHERE EXISTS (SELECT 1 FROM "
        "feature_entity_snapshots s WHERE s.namespace = feature_entity_state.namespace "
        "AND s.entity_type = feature_entity_state.entity_type "
        "AND s.entity_id = feature_entity_state.entity_id)"
    )
    op.drop_table("feature_entity_snapshots")
