"""Drift-baseline statistics of feature columns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.features import compute_features
from ml.features.stats import (
    bin_counts,
    categorical_stats,
    feature_stats,
    numeric_stats,
)
from tests.ml.test_features_data import transactions


def test_numeric_stats_on_quantile_bins() -> None:
    values = np.random.default_rng(0).lognormal(3.0, 1.0, 10_000)
    values[:5] = np.nan
    stats = numeric_stats(values, bins=10)
    assert stats["kind"] == "numeric"
    assert stats["count"] == 10_000 and stats["null_count"] == 5
    edges, counts = stats["bin_edges"], stats["bin_counts"]
    assert len(edges) == 11 and edges == sorted(edges)
    assert sum(counts) == 9_995
    assert max(counts) - min(counts) <= 2  # quantile bins hold equal shares
    finite = values[5:]
    assert stats["quantiles"]["p50"] == pytest.approx(np.median(finite))
    assert list(stats["quantiles"]) == ["p01", "p05", "p25", "p50", "p75", "p95", "p99"]
    assert stats["mean"] == pytest.approx(finite.mean())
    assert stats["std"] == pytest.approx(finite.std())
    assert (stats["min"], stats["max"]) == (finite.min(), finite.max())


def test_constant_and_empty_columns() -> None:
    stats = numeric_stats(np.full(50, 3.0))
    assert stats["bin_edges"] == [3.0, 3.0] and stats["bin_counts"] == [50]
    empty = numeric_stats(np.array([np.nan, np.nan]))
    assert empty["null_count"] == 2 and empty["bin_counts"] == []


def test_bin_counts_put_outliers_in_end_bins() -> None:
    assert bin_counts([-5.0, 0.0, 0.5, 1.0, 1.5, 2.0, 99.0], [0.0, 1.0, 2.0]) == [3, 4]


def test_categorical_stats() -> None:
    stats = categorical_stats(pd.Series([1, 0, 0, None, 1, 1], dtype="Int8"))
    assert stats["frequencies"] == {"0": 2, "1": 3}
    assert stats["null_count"] == 1 and stats["count"] == 6
    assert stats["proportions"]["1"] == pytest.approx(0.6)


def test_feature_stats_follow_specs_and_serialise() -> None:
    result = compute_features(transactions(2_000, 100, 10))
    stats = feature_stats(result.frame, result.specs)
    assert list(stats) == result.feature_names
    assert stats["is_weekend"]["kind"] == "categorical"
    assert stats["hour"]["kind"] == "categorical"
    assert stats["amount"]["kind"] == "numeric"
    assert sum(stats["is_new_device"]["frequencies"].values()) == 2_000
    json.dumps(stats, allow_nan=False)


def test_feature_stats_without_specs_infers_kind() -> None:
    frame = pd.DataFrame(
        {
            "transaction_id": ["a", "b", "c"],
            "x": [1.5, 2.5, 3.0],
            "flag": [0, 1, 1],
            "country": ["FR", "DE", "FR"],
        }
    )
    stats = feature_stats(frame)
    assert list(stats) == ["x", "flag", "country"]
    assert [stats[c]["kind"] for c in stats] == [
        "numeric",
        "categorical",
        "categorical",
    ]
    assert stats["country"]["frequencies"] == {"DE": 1, "FR": 2}
