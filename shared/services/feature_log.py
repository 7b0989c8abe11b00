"""The logged features of a model's predictions, for the monitoring audits: kept in a
columnar mirror by a periodic ``export`` and read back a window at a time."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime

from shared.errors import ValidationFailed
from shared.ports import FeatureLogMirror, FeatureLogReader, LoggedWindow

log = logging.getLogger(__name__)


class FeatureLog:
    def __init__(self, mirror: FeatureLogMirror, reader: FeatureLogReader) -> None:
        self.mirror = mirror
        self.reader = reader

    def export(self, now: datetime | None = None) -> int:
        """Mirror the rows logged since the last export (and any committed late), then
        compact the closed hours; the rows mirrored. Safe to run from several workers
        at once and again after an interruption."""
        rows = self.mirror.export(now)
        merged = self.mirror.compact()
        if rows or merged:
            log.info("feature log: %d rows mirrored, %d segments merged", rows, merged)
        return rows

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        """The model's predictions with ``created_at`` in ``[start, end)`` as columns."""
        for field, moment in (("window_start", start), ("window_end", end)):
            if moment.tzinfo is None:
                raise ValidationFailed(
                    "window times must be timezone-aware",
                    [{"field": field, "message": "must carry a timezone"}],
                )
        if end < start:
            raise ValidationFailed(
                "the window ends before it starts",
                [{"field": "window_end", "message": "must not be before window_start"}],
            )
        return self.reader.window(model_id, start, end, feature_names)
