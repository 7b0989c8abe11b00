"""The reference ``FeatureLogReader``: the window's rows read from ``predictions``, their
JSON features parsed row by row. Correct and simple, for small windows and as what the
Parquet mirror is tested against."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import select

from shared.adapters.feature_log.rows import TABLE, in_range, to_ns
from shared.db.session import Database
from shared.ports import LoggedWindow


def _float(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return math.nan


class SqlRowsFeatureLog:
    """Rows in ``(created_at, id)`` order."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        stmt = (
            select(
                TABLE.c.created_at,
                TABLE.c.input_features,
                TABLE.c.fraud_score,
                TABLE.c.actual_label,
                TABLE.c.latency_ms,
            )
            .where(in_range(model_id, start, end))
            .order_by(TABLE.c.created_at, TABLE.c.id)
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        names = tuple(feature_names)
        features = np.full((len(rows), len(names)), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            logged = row.input_features if isinstance(row.input_features, dict) else {}
            for j, name in enumerate(names):
                features[i, j] = _float(logged.get(name))
        return LoggedWindow(
            feature_names=names,
            features=features,
            scores=np.array([r.fraud_score for r in rows], dtype=np.float64),
            labels=np.array(
                [
                    math.nan if r.actual_label is None else float(r.actual_label)
                    for r in rows
                ],
                dtype=np.float64,
            ),
            created_at_ns=np.array([to_ns(r.created_at) for r in rows], dtype=np.int64),
            latency_ms=np.array(
                [math.nan if r.latency_ms is None else r.latency_ms for r in rows],
                dtype=np.float64,
            ),
        )
