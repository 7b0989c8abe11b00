"""Evaluation from stored test rows: precision@k per day (transactions and users)
by hand and against a brute-force reference, the reliability curve, the report."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from ml.training.evaluation import (
    DAY_NS,
    calibration_curve,
    evaluation_report,
    precision_at_k_per_day,
    precision_metrics,
    user_precision_at_k_per_day,
)

T0 = np.datetime64("2026-03-01T00:00:00", "ns").astype(np.int64)
HOUR = DAY_NS // 24


def _brute_transactions(y, s, ts, k):  # type: ignore[no-untyped-def]
    by_day = defaultdict(list)
    for i in range(len(y)):
        by_day[int(ts[i]) // DAY_NS].append(i)
    out = {}
    for day, rows in sorted(by_day.items()):
        ranked = sorted(rows, key=lambda i: (-s[i], i))[:k]
        out[day] = sum(int(y[i]) for i in ranked) / k
    return out


def _brute_users(y, s, ts, users, k):  # type: ignore[no-untyped-def]
    best: dict[int, dict[str, float]] = defaultdict(dict)
    fraud: dict[int, dict[str, int]] = defaultdict(dict)
    for i in range(len(y)):
        day, user = int(ts[i]) // DAY_NS, str(users[i])
        best[day][user] = max(best[day].get(user, -np.inf), s[i])
        fraud[day][user] = max(fraud[day].get(user, 0), int(y[i]))
    out = {}
    for day in sorted(best):
        ranked = sorted(best[day], key=lambda u: (-best[day][u], u))[:k]
        out[day] = sum(fraud[day][u] for u in ranked) / k
    return out


def test_precision_at_k_by_hand() -> None:
    # day 1: scores .9 (fraud) .8 (legit) .7 (fraud); day 2: .6 (legit) .5 (fraud)
    y = np.array([1, 0, 1, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    ts = np.array([T0, T0 + HOUR, T0 + 2 * HOUR, T0 + DAY_NS, T0 + DAY_NS + 1])
    result = precision_at_k_per_day(y, s, ts, k=2)
    assert result.days == ["2026-03-01", "2026-03-02"]
    assert result.precision == [0.5, 0.5]
    assert result.candidates == [3, 2]
    assert result.mean == 0.5
    # k larger than a day: the hits are still divided by k (the handbook's rule)
    assert precision_at_k_per_day(y, s, ts, k=3).precision == [2 / 3, 1 / 3]


def test_ties_keep_input_order() -> None:
    y, s, ts = np.array([0, 1]), np.array([0.5, 0.5]), np.array([T0, T0])
    assert precision_at_k_per_day(y, s, ts, k=1).precision == [0.0]
    assert precision_at_k_per_day(y[::-1], s, ts, k=1).precision == [1.0]


def test_user_precision_at_k_by_hand() -> None:
    # day 1: A max .9 with a fraud at .2; B max .8 no fraud; C .7 fraud
    users = np.array(["A", "A", "B", "C", "A", "B"])
    y = np.array([0, 1, 0, 1, 0, 1])
    s = np.array([0.9, 0.2, 0.8, 0.7, 0.1, 0.3])
    ts = np.array([T0, T0 + 1, T0 + 2, T0 + 3, T0 + DAY_NS, T0 + DAY_NS + 5])
    result = user_precision_at_k_per_day(y, s, ts, users, k=2)
    # day 1 top 2 users: A (fraud that day), B (none) -> 0.5; day 2: B .3 fraud, A .1
    assert result.precision == [0.5, 0.5]
    assert result.candidates == [3, 2]
    assert user_precision_at_k_per_day(y, s, ts, users, k=1).precision == [1.0, 1.0]
    assert precision_metrics(y, s, ts, users, k=2) == {
        "precision_at_2": 0.25,  # transactions: day 1 .9 .8 legit; day 2 .3 fraud
        "user_precision_at_2": 0.5,
    }


@pytest.mark.parametrize("k", [1, 3, 10])
def test_against_brute_force(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 2000
    y = (rng.random(n) < 0.1).astype(np.int64)
    s = np.round(rng.random(n), 2)  # many ties
    ts = T0 + rng.integers(0, 9 * DAY_NS, n)
    users = np.array([f"u{u}" for u in rng.integers(0, 60, n)])
    daily = precision_at_k_per_day(y, s, ts, k)
    expected = _brute_transactions(y, s, ts, k)
    assert daily.precision == pytest.approx(list(expected.values()))
    per_user = user_precision_at_k_per_day(y, s, ts, users, k)
    expected_users = _brute_users(y, s, ts, users, k)
    assert per_user.precision == pytest.approx(list(expected_users.values()))
    assert per_user.mean == pytest.approx(np.mean(list(expected_users.values())))


def test_empty_and_bad_k() -> None:
    empty = np.array([], dtype=np.int64)
    assert precision_at_k_per_day(empty, empty, empty).mean is None
    with pytest.raises(ValueError):
        precision_at_k_per_day(np.array([1]), np.array([0.5]), np.array([T0]), k=0)


def test_calibration_curve_bins() -> None:
    s = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1])
    curve = calibration_curve(y, s, bins=10)
    assert curve["bin_lower"] == pytest.approx([0.0, 0.1, 0.9])
    assert curve["count"] == [1, 2, 2]
    assert curve["mean_score"] == pytest.approx([0.05, 0.135, 0.975])
    assert curve["fraud_rate"] == pytest.approx([0.0, 0.5, 1.0])


def test_report_has_every_part() -> None:
    rng = np.random.default_rng(0)
    n = 500
    y = (rng.random(n) < 0.2).astype(np.int64)
    s = np.clip(y * 0.4 + rng.random(n) * 0.6, 0, 1)
    ts = T0 + rng.integers(0, 3 * DAY_NS, n)
    users = rng.integers(0, 40, n)
    report = evaluation_report(y, s, ts, users, threshold=0.5, k=10)
    cm = report["confusion_matrix"]
    assert cm["tp"] == int(((s >= 0.5) & (y == 1)).sum())
    assert sum(cm.values()) == n == report["rows"]
    assert len(report["roc_curve"]["fpr"]) <= 200
    assert report["precision_at_k"]["k"] == 10
    assert len(report["user_precision_at_k"]["per_day"]) == 3
    assert sum(report["calibration"]["count"]) == n
