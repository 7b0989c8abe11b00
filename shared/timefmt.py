"""Timestamps and durations as every API answer shows them."""

from __future__ import annotations

from datetime import datetime

from shared.db.types import utcnow


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as in the spec's examples."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def elapsed_and_eta(
    started: datetime | None, completed: datetime | None, progress: float, running: bool
) -> tuple[float | None, float | None]:
    """Seconds since start, and a linear estimate of the seconds left while running."""
    if started is None:
        return None, None
    elapsed = ((completed or utcnow()) - started).total_seconds()
    eta = None
    if running and 0.02 < progress < 1:
        eta = round(elapsed * (1 - progress) / progress, 1)
    return round(elapsed, 2), eta
