"""Calendar features of the transaction time (UTC: the data carries no local zone).

Pure integer arithmetic on epoch nanoseconds, so batch and online share one
definition and need no datetime library.
"""

from __future__ import annotations

import math

import numpy as np

from ml.features.aggregation_features import Timeline
from ml.features.config import (
    FeatureConfig,
    Float64Array,
    Int64Array,
    PreparedTransactions,
)

_HOUR_NS = 3_600 * 1_000_000_000
_DAY_NS = 24 * _HOUR_NS
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday = 0
NIGHT_END_HOUR = 6  # is_night covers hours 0..5


def temporal_features(ts_ns: Int64Array) -> dict[str, Float64Array]:
    hour = np.floor_divide(ts_ns, _HOUR_NS) % 24
    day_of_week = (np.floor_divide(ts_ns, _DAY_NS) + _EPOCH_WEEKDAY) % 7
    angle = 2.0 * np.pi * hour.astype(np.float64) / 24.0
    return {
        "hour": hour.astype(np.float64),
        "day_of_week": day_of_week.astype(np.float64),
        "is_weekend": (day_of_week >= 5).astype(np.float64),
        "is_night": (hour < NIGHT_END_HOUR).astype(np.float64),
        "hour_sin": np.sin(angle),
        "hour_cos": np.cos(angle),
    }


def temporal_features_one(t_ns: int) -> dict[str, float]:
    """`temporal_features` for one time in plain numbers (the online path)."""
    hour = (t_ns // _HOUR_NS) % 24
    day_of_week = (t_ns // _DAY_NS + _EPOCH_WEEKDAY) % 7
    angle = 2.0 * math.pi * float(hour) / 24.0
    return {
        "hour": float(hour),
        "day_of_week": float(day_of_week),
        "is_weekend": float(day_of_week >= 5),
        "is_night": float(hour < NIGHT_END_HOUR),
        "hour_sin": math.sin(angle),
        "hour_cos": math.cos(angle),
    }


def compute_temporal(
    data: PreparedTransactions,
    timeline: Timeline,
    config: FeatureConfig,
    wanted: set[str],
) -> dict[str, Float64Array]:
    features = temporal_features(data.ts)
    return {name: values for name, values in features.items() if name in wanted}
