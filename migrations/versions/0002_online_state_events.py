"""online feature state as snapshot plus event log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:30:00

Each scored transaction used to rewrite its entities' whole state (a busy merchant's is
megabytes). Now it appends one small event per entity and bumps the head sequence; the
snapshot is rewritten only after many events. Existing rows keep their state as the
snapshot at sequence 0.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feature_entity_state", schema=None) as batch_op:
        for name in ("seq", "snapshot_seq", "gen"):
            batch_op.add_column(
                sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)
            )
    op.create_table(
        "feature_entity_events",
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("entity_type", sa.String(length=20), nullable=False),
        sa.Column("entity_id", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "entity_type", "entity_id", "seq"),
    )


def downgrade() -> None:
    op.drop_table("feature_entity_events")
    with op.batch_alter_table("feature_entity_state", schema=None) as batch_op:
        for name in ("gen", "snapshot_seq", "seq"):
            batch_op.drop_column(name)
