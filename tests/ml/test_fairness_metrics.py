"""The fairness metrics equal Fairlearn's on the same data (to 1e-12), and differ from
it only where a rate is undefined, as ml/fairness/metrics.py says."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from ml.fairness.metrics import (
    DEMOGRAPHIC_PARITY,
    DISPARATE_IMPACT,
    EQUALIZED_ODDS,
    FPR_PARITY,
    Level,
    bootstrap_intervals,
    confusion_by_group,
    disparities,
    metric_status,
    rates,
)

TOL = 1e-12


def _fairlearn(y: Any, p: Any, g: Any) -> dict[str, Any]:
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=y,
        y_pred=p,
        sensitive_features=g,
    )
    return {
        "by_group": frame.by_group,
        DEMOGRAPHIC_PARITY: demographic_parity_difference(y, p, sensitive_features=g),
        EQUALIZED_ODDS: equalized_odds_difference(y, p, sensitive_features=g),
        DISPARATE_IMPACT: demographic_parity_ratio(y, p, sensitive_features=g),
        FPR_PARITY: frame.difference()["fpr"],
    }


def _case(rng: np.random.Generator) -> tuple[Any, Any, Any, int]:
    n_groups = int(rng.integers(2, 6))
    n = int(rng.integers(n_groups * 20, 3000))
    g = rng.integers(0, n_groups, n)
    g[:n_groups] = np.arange(n_groups)  # every group present
    base = rng.uniform(0.02, 0.6, n_groups)
    y = (rng.random(n) < base[g]).astype(np.int64)
    skill = rng.uniform(0.0, 0.9, n_groups)
    noisy = rng.random(n) < rng.uniform(0.01, 0.4)
    p = np.where(rng.random(n) < skill[g], y, noisy.astype(np.int64))
    # each group keeps both labels, so Fairlearn's and our rates are all defined
    for k in range(n_groups):
        idx = np.flatnonzero(g == k)
        y[idx[0]], y[idx[1]] = 0, 1
    return y, p, g, n_groups


@pytest.mark.parametrize("seed", range(60))
def test_equal_to_fairlearn_on_random_cases(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y, p, g, n_groups = _case(rng)
    ours = rates(confusion_by_group(g, n_groups, y, p))
    theirs = _fairlearn(y, p, g)
    by_group = theirs["by_group"]
    np.testing.assert_allclose(
        ours.selection_rate, by_group["selection_rate"].to_numpy(), rtol=0, atol=TOL
    )
    np.testing.assert_allclose(ours.tpr, by_group["tpr"].to_numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.fpr, by_group["fpr"].to_numpy(), rtol=0, atol=TOL)
    assert ours.count.tolist() == np.bincount(g, minlength=n_groups).tolist()
    values = disparities(ours)
    for metric in (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS, DISPARATE_IMPACT, FPR_PARITY):
        assert abs(float(values[metric]) - theirs[metric]) <= TOL, metric


def test_string_groups_and_boolean_inputs_count_the_same() -> None:
    rng = np.random.default_rng(7)
    y, p, g, n_groups = _case(rng)
    names = np.array(["f", "m", "x", "y", "z"])[g]
    theirs = _fairlearn(y.astype(bool), p.astype(bool), names)
    ours = disparities(rates(confusion_by_group(g, n_groups, y == 1, p == 1)))
    assert abs(float(ours[EQUALIZED_ODDS]) - theirs[EQUALIZED_ODDS]) <= TOL


def test_a_group_without_positives_has_no_tpr_where_fairlearn_says_zero() -> None:
    g = np.array([0] * 6 + [1] * 6 + [2] * 6)
    y = np.array([0, 1, 1, 0, 0, 1] + [0, 1, 0, 1, 1, 0] + [0] * 6)
    p = np.array([0, 1, 0, 0, 1, 1] + [0, 1, 1, 1, 0, 0] + [0, 1, 0, 0, 0, 0])
    ours = rates(confusion_by_group(g, 3, y, p))
    assert np.isnan(ours.tpr[2]) and not np.isnan(ours.fpr[2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = _fairlearn(y, p, g)
    assert theirs["by_group"]["tpr"].iloc[2] == 0.0  # Fairlearn: 0/0 read as 0
    values = disparities(ours)
    # ours leaves the undefined TPR out: equal to Fairlearn on the groups that have it
    tpr_spread = ours.tpr[:2].max() - ours.tpr[:2].min()
    fpr_spread = ours.fpr.max() - ours.fpr.min()
    assert float(values[EQUALIZED_ODDS]) == pytest.approx(max(tpr_spread, fpr_spread))
    assert float(values[EQUALIZED_ODDS]) < theirs[EQUALIZED_ODDS]
    assert abs(float(values[FPR_PARITY]) - theirs[FPR_PARITY]) <= TOL
    assert abs(float(values[DEMOGRAPHIC_PARITY]) - theirs[DEMOGRAPHIC_PARITY]) <= TOL


def test_a_group_without_negatives_has_no_fpr() -> None:
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y = np.array([0, 1, 0, 1, 1, 1, 1, 1])
    p = np.array([1, 1, 0, 0, 1, 0, 1, 1])
    ours = rates(confusion_by_group(g, 2, y, p))
    assert np.isnan(ours.fpr[1])
    values = disparities(ours)
    assert float(values[FPR_PARITY]) == 0.0  # one group left: no spread
    assert float(values[EQUALIZED_ODDS]) == pytest.approx(0.75 - 0.5)


def test_nobody_selected_is_parity() -> None:
    g = np.array([0, 0, 1, 1])
    ours = disparities(rates(confusion_by_group(g, 2, [0, 1, 0, 1], [0, 0, 0, 0])))
    assert float(ours[DISPARATE_IMPACT]) == 1.0
    assert float(ours[DEMOGRAPHIC_PARITY]) == 0.0


def test_rows_without_a_group_are_left_out() -> None:
    counts = confusion_by_group([0, -1, 1, -1], 2, [1, 1, 0, 0], [1, 0, 0, 1])
    assert counts.tolist() == [[0, 0, 0, 1], [1, 0, 0, 0]]


def test_bootstrap_intervals_are_seeded_and_hold_the_value() -> None:
    rng = np.random.default_rng(3)
    y, p, g, n_groups = _case(rng)
    counts = confusion_by_group(g, n_groups, y, p)
    first = bootstrap_intervals(counts, replicates=400, seed=5)
    assert first == bootstrap_intervals(counts, replicates=400, seed=5)
    assert first != bootstrap_intervals(counts, replicates=400, seed=6)
    values = disparities(rates(counts))
    for metric, (low, high) in first.items():
        assert low <= high
        # the point estimate of a max-min spread is biased up, so only a loose check
        assert low - 0.1 <= float(values[metric]) <= high + 0.1, metric
    wider = bootstrap_intervals(counts, replicates=400, seed=5, level=0.99)
    assert wider[DEMOGRAPHIC_PARITY][0] <= first[DEMOGRAPHIC_PARITY][0]


def test_bootstrap_matches_resampling_rows_within_groups() -> None:
    """The multinomial draw is the row resample, in distribution: the interval of a
    two-group parity difference is close to the one from resampled rows."""
    rng = np.random.default_rng(11)
    g = np.repeat([0, 1], [4000, 6000])
    y = (rng.random(g.size) < 0.3).astype(np.int64)
    p = (rng.random(g.size) < np.where(g == 0, 0.25, 0.35)).astype(np.int64)
    counts = confusion_by_group(g, 2, y, p)
    low, high = bootstrap_intervals(counts, replicates=2000, seed=1)[DEMOGRAPHIC_PARITY]
    draws = []
    for _ in range(2000):
        a = rng.choice(p[g == 0], 4000)
        b = rng.choice(p[g == 1], 6000)
        draws.append(abs(a.mean() - b.mean()))
    ref_low, ref_high = np.percentile(draws, [2.5, 97.5])
    assert low == pytest.approx(ref_low, abs=0.004)
    assert high == pytest.approx(ref_high, abs=0.004)


@pytest.mark.parametrize(
    ("metric", "value", "status"),
    [
        (DEMOGRAPHIC_PARITY, 0.1, "OK"),
        (DEMOGRAPHIC_PARITY, 0.15, "WARNING"),
        (DEMOGRAPHIC_PARITY, 0.21, "CRITICAL"),
        (DISPARATE_IMPACT, 0.8, "OK"),
        (DISPARATE_IMPACT, 0.79, "WARNING"),
        (DISPARATE_IMPACT, 0.5, "CRITICAL"),
    ],
)
def test_statuses_by_threshold(metric: str, value: float, status: str) -> None:
    level = Level(0.8, 0.6) if metric == DISPARATE_IMPACT else Level(0.1, 0.2)
    assert metric_status(metric, value, level) == status
