"""The feature log service with in-memory ports: an export mirrors then compacts, a
window is handed to the reader, a bad window is refused before any read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from shared.errors import ValidationFailed
from shared.ports import LoggedWindow
from shared.services.feature_log import FeatureLog

T0 = datetime(2026, 12, 8, 1, tzinfo=UTC)


class MemoryMirror:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.windows: list[tuple[uuid.UUID, datetime, datetime, tuple[str, ...]]] = []

    def export(self, now: datetime | None = None) -> int:
        self.calls.append("export")
        return 7

    def compact(self) -> int:
        self.calls.append("compact")
        return 2

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        self.windows.append((model_id, start, end, tuple(feature_names)))
        return LoggedWindow(
            feature_names=tuple(feature_names),
            features=np.zeros((1, len(feature_names)), dtype=np.float32),
            scores=np.array([0.5]),
            labels=np.array([np.nan]),
            created_at_ns=np.array([0], dtype=np.int64),
            latency_ms=np.array([1.0]),
        )


def test_export_mirrors_then_compacts_and_counts_the_rows() -> None:
    mirror = MemoryMirror()
    assert FeatureLog(mirror, mirror).export() == 7
    assert mirror.calls == ["export", "compact"]


def test_window_is_read_by_the_reader() -> None:
    mirror = MemoryMirror()
    model_id = uuid.uuid4()
    got = FeatureLog(mirror, mirror).window(
        model_id, T0, T0 + timedelta(hours=1), ["amount"]
    )
    assert got.rows == 1 and got.feature_names == ("amount",)
    assert mirror.windows == [(model_id, T0, T0 + timedelta(hours=1), ("amount",))]


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T0, T0 - timedelta(seconds=1), "window_end"),
        (T0.replace(tzinfo=None), T0, "window_start"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(
    start: datetime, end: datetime, field: str
) -> None:
    mirror = MemoryMirror()
    with pytest.raises(ValidationFailed) as caught:
        FeatureLog(mirror, mirror).window(uuid.uuid4(), start, end, ["amount"])
    assert caught.value.details[0]["field"] == field
    assert mirror.windows == []
