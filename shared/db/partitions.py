"""Monthly range partitions of ``predictions`` on PostgreSQL, created ahead of time.

The migration creates the current month and the next few; the maintenance timer calls
``ensure_prediction_partitions`` daily so a partition always exists before it is needed.
A DEFAULT partition catches anything outside them: an insert never fails for want of one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, text


def _month_start(d: date, offset: int) -> date:
    month_index = d.year * 12 + (d.month - 1) + offset
    return date(month_index // 12, month_index % 12 + 1, 1)


def ensure_prediction_partitions(
    conn: Connection, months_ahead: int = 3, today: date | None = None
) -> list[str]:
    """Create partitions from last month to ``months_ahead``; return their names."""
    if conn.dialect.name != "postgresql":
        return []
    today = today or datetime.now(UTC).date()
    names = []
    for offset in range(-1, months_ahead + 1):
        lo, hi = _month_start(today, offset), _month_start(today, offset + 1)
        name = f"predictions_y{lo.year}m{lo.month:02d}"
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF predictions "
                f"FOR VALUES FROM ('{lo.isoformat()}') TO ('{hi.isoformat()}')"
            )
        )
        names.append(name)
    conn.execute(
        text(
            "CREATE TABLE IF NOT EXISTS predictions_default "
            "PARTITION OF predictions DEFAULT"
        )
    )
    return names


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic autogenerate filter: the partitions belong to ``predictions``; they are
    managed here, not as tables of their own."""
    return not (
        type_ == "table" and name is not None and name.startswith("predictions_")
    )
