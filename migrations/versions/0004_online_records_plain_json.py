"""online transaction records as plain JSON on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:20:00

``online_transactions`` holds one exactly-once record per scored transaction, its 53
features included, read back only when the same transaction id is retried. As JSONB,
PostgreSQL parsed every feature into a numeric on insert: 10,000 records took 365 ms
against 145 ms as ``json`` (measured here), the largest database cost of a
/predict/batch. Nothing queries inside these documents. SQLite stores both as text:
no change there.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("entity_keys", "features")


def _retype(to: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    changes = ", ".join(
        f"ALTER COLUMN {column} TYPE {to} USING {column}::{to}" for column in _COLUMNS
    )
    op.execute(f"ALTER TABLE online_transactions {changes}")


def upgrade() -> None:
    _retype("json")


def downgrade() -> None:
    _retype("jsonb")
