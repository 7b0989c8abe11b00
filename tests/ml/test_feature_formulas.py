"""The one-transaction forms of the feature formulas (the online path) agree with the
array forms (batch) on random and edge-case inputs."""

from __future__ import annotations

import numpy as np
import pytest

from ml.features.aggregation_features import (
    MAX_RATIO,
    fraud_rate,
    fraud_rate_one,
    window_mean_features,
    window_mean_features_one,
)
from ml.features.behavioral_features import activity_features, activity_features_one
from ml.features.temporal_features import temporal_features, temporal_features_one
from ml.features.transaction_features import amount_features, amount_features_one

RNG = np.random.default_rng(7)
N = 5000


def _close(one: dict[str, float], arrays: dict[str, np.ndarray], i: int) -> None:
    assert one.keys() == arrays.keys()
    for name, value in one.items():
        assert value == pytest.approx(float(arrays[name][i]), rel=1e-12, abs=1e-12), (
            name
        )


@pytest.mark.slow
def test_amount_features_agree() -> None:
    amount = np.concatenate(
        [RNG.lognormal(3, 2, N), [0.0, 0.005, 0.015, 10.0, 1000.0, 12.345, 0.125]]
    )
    size = amount.size
    n = RNG.integers(0, 6, size).astype(np.float64)
    shift = RNG.lognormal(3, 1, size)
    x = RNG.normal(0, 50, size)
    s1 = np.where(n > 0, x * n, 0.0)
    s2 = np.where(n > 0, (x * x + RNG.uniform(0, 100, size)) * n, 0.0)
    s2[::7] = s1[::7] ** 2 / np.maximum(n[::7], 1)  # constant amounts: std ~ 0
    arrays = amount_features(amount, n, s1, s2, shift)
    for i in range(size):
        one = amount_features_one(
            float(amount[i]), float(n[i]), float(s1[i]), float(s2[i]), float(shift[i])
        )
        _close(one, arrays, i)


@pytest.mark.slow
def test_activity_temporal_and_fraud_rate_agree() -> None:
    ts = RNG.integers(0, 2_000_000_000 * 10**9, N)
    prev = ts - RNG.integers(0, 10**14, N)
    n_prev = RNG.integers(0, 3, N).astype(np.float64)
    activity = activity_features(ts, prev, n_prev)
    temporal = temporal_features(ts)
    fraud = RNG.integers(0, 5, N).astype(np.float64)
    labelled = fraud + RNG.integers(0, 5, N)
    rates = fraud_rate(fraud, labelled)
    for i in range(N):
        _close(activity_features_one(int(ts[i]), int(prev[i]), n_prev[i]), activity, i)
        _close(temporal_features_one(int(ts[i])), temporal, i)
        assert fraud_rate_one(fraud[i], labelled[i]) == pytest.approx(rates[i])


def test_window_mean_features_agree_and_stay_finite() -> None:
    amount = np.concatenate([RNG.lognormal(3, 2, 500), [0.0, 1e12, 1e12, 5.0, 0.0]])
    size = amount.size
    count = RNG.integers(0, 4, size).astype(np.float64)
    total = np.where(count > 0, RNG.lognormal(3, 2, size) * count, 0.0)
    count[-3:], total[-3:] = 1.0, [1e-300, 0.0, 0.0]  # a tiny mean, a zero mean
    arrays = window_mean_features(amount, count, total, "7d")
    for i in range(size):
        one = window_mean_features_one(
            float(amount[i]), float(count[i]), float(total[i]), "7d"
        )
        _close(one, arrays, i)
    assert np.isfinite(arrays["amount_to_user_mean_7d"]).all()
    assert arrays["amount_to_user_mean_7d"][-3] == MAX_RATIO  # capped
    assert arrays["amount_to_user_mean_7d"][-1] == 1.0  # no mean to compare with
