"""The time window a monitoring request reads: a label ending now (or at
``window_end``), or explicit bounds, over prediction time, at most 90 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.db.types import utcnow
from shared.errors import ValidationFailed, field_error

WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
CUSTOM = "custom"
MAX_WINDOW = timedelta(days=90)


@dataclass(frozen=True)
class Window:
    label: str  # one of WINDOWS, or "custom" for explicit bounds
    start: datetime
    end: datetime


def _out_of_range(name: str) -> ValidationFailed:
    return ValidationFailed(
        f"{name} is out of range.", field_error(name, "a date between years 1 and 9999")
    )


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_field(value: datetime | None, name: str) -> datetime | None:
    try:
        return utc(value)
    except OverflowError:
        raise _out_of_range(name) from None


def resolve_window(
    window: str | None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    *,
    default: str = "24h",
    now: datetime | None = None,
) -> Window:
    """``[start, end)``: a label ends at ``window_end`` or now; ``window_start`` makes
    the window custom (ending at ``window_end`` or now). 422 naming the field."""
    start = _utc_field(window_start, "window_start")
    end = _utc_field(window_end, "window_end")
    if window is not None and window not in WINDOWS:
        raise ValidationFailed(
            f"window must be one of {', '.join(WINDOWS)}.",
            field_error("window", f"one of {', '.join(WINDOWS)}"),
        )
    if window is not None and start is not None:
        raise ValidationFailed(
            "Give window or window_start, not both.",
            field_error("window_start", "not with window"),
        )
    end = end or utc(now) or utcnow()
    label = CUSTOM if start is not None else (window or default)
    if start is None:
        try:
            start = end - WINDOWS[label]
        except OverflowError:
            raise _out_of_range("window_end") from None
    if end <= start:
        raise ValidationFailed(
            "window_end must be after window_start.",
            field_error("window_end", "must be after window_start"),
        )
    if end - start > MAX_WINDOW:
        raise ValidationFailed(
            "A window spans at most 90 days.",
            field_error("window_start", "at most 90 days before window_end"),
        )
    return Window(label, start, end)
