"""Drift statistics: equal to scipy, PSI by hand, statuses on synthetic streams."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from ml.monitoring import (
    Baseline,
    DriftThresholds,
    build_baseline,
    compute_drift,
    feature_drift,
)
from ml.monitoring.drift import chi_square, psi

TOL = 1e-9


def _feature(values: np.ndarray, **kwargs: object) -> Baseline:
    return build_baseline(values.reshape(-1, 1), ["x"], **kwargs)  # type: ignore[arg-type]


def _finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def _case(rng: np.random.Generator, i: int) -> tuple[np.ndarray, np.ndarray]:
    """A training and a live column: sizes on both sides of scipy's exact-mode limit,
    continuous, heavily tied, with NaN and infinities, float32 or float64."""
    m = int(rng.choice([1, 7, 300, 9_999, 10_000, 10_001, 25_000]))
    n = int(rng.choice([1, 2, 50, 5_000, 10_000, 10_001, 60_000]))
    dtype = np.float32 if i % 2 else np.float64
    if i % 3 == 0:  # ties: a few distinct non-integer values
        train = rng.integers(0, 40, m) / 4 + 0.1
        live = rng.integers(0, 44, n) / 4 + 0.1
    else:
        train = rng.normal(size=m)
        live = rng.normal(rng.normal() * 0.1, 1 + rng.random() * 0.2, n)
    train, live = train.astype(dtype), live.astype(dtype)
    live[rng.random(n) < 0.05] = np.nan
    if n > 10:
        live[:2] = [np.inf, -np.inf]
    return train, live


@pytest.mark.parametrize("seed", range(40))
def test_ks_equals_scipy_ks_2samp(seed: int) -> None:
    rng = np.random.default_rng(seed)
    train, live = _case(rng, seed)
    ks_sample = int(rng.choice([500, 10_000, 30_000]))
    feature = _feature(train, ks_sample=ks_sample, categorical=()).feature("x")
    result = feature_drift(feature, live)
    live_finite = _finite(live)
    if live_finite.size == 0:
        assert result.ks_statistic is None and result.ks_p is None
        return
    expected = stats.ks_2samp(feature.sample, live_finite)
    assert result.ks_statistic == pytest.approx(expected.statistic, abs=TOL, rel=0)
    assert result.ks_p == pytest.approx(expected.pvalue, abs=TOL, rel=0)
    if train.size <= ks_sample:  # the sample is the whole training column
        direct = stats.ks_2samp(_finite(train), live_finite)
        assert result.ks_statistic == pytest.approx(direct.statistic, abs=TOL, rel=0)


def test_ks_of_a_big_window_uses_the_smirnov_distribution_like_scipy() -> None:
    rng = np.random.default_rng(7)
    train = rng.lognormal(size=200_000).astype(np.float32)
    live = (rng.lognormal(size=300_000) * 1.01).astype(np.float32)
    feature = _feature(train).feature("x")
    result = feature_drift(feature, live)
    expected = stats.ks_2samp(feature.sample, live)
    assert result.ks_statistic == pytest.approx(expected.statistic, abs=TOL, rel=0)
    assert result.ks_p == pytest.approx(expected.pvalue, abs=TOL, rel=0)


@pytest.mark.parametrize("seed", range(30))
def test_chi_square_equals_scipy_chi2_contingency(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    k = int(rng.integers(2, 12))
    train = rng.integers(0, k, int(rng.integers(20, 50_000))).astype(np.float32)
    # live may miss categories, add unseen ones ("other") and missing values
    live = rng.integers(int(rng.integers(0, 2)), k + int(rng.integers(0, 3)), 5_000)
    live = live.astype(np.float32)
    live[rng.random(live.size) < 0.02] = np.nan
    feature = _feature(train).feature("x")
    assert feature.kind == "categorical"
    result = feature_drift(feature, live)
    codes = _finite(live)
    categories = np.array(feature.categories)
    live_counts = [int((codes == c).sum()) for c in categories]
    live_counts.append(int((~np.isin(codes, categories)).sum()))
    table = np.array([list(feature.bin_counts), live_counts])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table)
    assert result.chi_square == pytest.approx(expected.statistic, abs=TOL, rel=0)
    assert result.chi_square_p == pytest.approx(expected.pvalue, abs=TOL, rel=0)
    assert list(result.current_counts[:-1]) == live_counts
    assert result.current_counts[-1] == int(np.isnan(live).sum())


def test_chi_square_of_two_categories_keeps_scipys_continuity_correction() -> None:
    expected = stats.chi2_contingency([[30, 70], [45, 55]])
    assert chi_square([30, 70], [45, 55]) == pytest.approx(
        (expected.statistic, expected.pvalue), abs=TOL
    )
    assert chi_square([30, 0], [0, 0]) is None


def test_psi_by_hand() -> None:
    # shares .25 each against .1 .2 .3 .4: sum (c - b) ln(c / b)
    assert psi([25, 25, 25, 25], [10, 20, 30, 40]) == pytest.approx(0.2282174, abs=1e-6)
    # an empty bin counts as a share of 1e-4:
    # (.4 - .5) ln(.4 / .5) + (.1 - 1e-4) ln(.1 / 1e-4)
    assert psi([50, 50, 0], [50, 40, 10]) == pytest.approx(0.7123992, abs=1e-6)
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-12)
    assert psi([0, 0], [1, 1]) is None


def test_psi_on_known_distributions() -> None:
    train = np.arange(10_000, dtype=np.float32)  # ten bins of 1000
    feature = _feature(train).feature("x")
    assert feature.bin_counts == (999, *([1000] * 8), 1001)
    # live: half its values in the lowest decile, the rest spread as in training
    live = np.concatenate(
        [np.arange(0, 999, dtype=np.float32), np.arange(10_000, dtype=np.float32)[::10]]
    )
    result = feature_drift(feature, live)
    base = np.array([*feature.bin_counts, 0]) / 10_000
    current = np.array(result.current_counts) / live.size
    base[-1] = current[-1] = 1e-4  # no missing values on either side
    expected = float(np.sum((current - base) * np.log(current / base)))
    assert result.psi == pytest.approx(expected, abs=1e-12)
    assert result.current_counts[0] == 999 + 100
    assert result.status == "CRITICAL"


def test_a_feature_going_missing_is_drift() -> None:
    train = np.random.default_rng(3).normal(size=5_000).astype(np.float32)
    live = np.full(5_000, np.nan, np.float32)
    result = feature_drift(_feature(train).feature("x"), live)
    assert result.current_missing_rate == 1.0 and result.baseline_missing_rate == 0.0
    assert result.ks_statistic is None and result.psi is not None
    assert result.status == "CRITICAL"


def _stream(
    rng: np.random.Generator, n: int, drift: bool
) -> tuple[np.ndarray, list[str]]:
    shift = 0.5 if drift else 0.0
    columns = [
        rng.lognormal(3 + shift, 1, n),  # amount
        rng.normal(shift, 1, n),
        rng.exponential(1 + 2 * shift, n),
        rng.integers(0, 6 + (3 if drift else 0), n),  # a device code
        rng.choice([0, 1], n, p=[0.7 - shift / 2, 0.3 + shift / 2]),  # a flag
    ]
    matrix = np.column_stack(columns).astype(np.float32)
    matrix[rng.random(matrix.shape) < 0.01] = np.nan
    return matrix, ["amount", "z", "velocity", "device", "flag"]


def test_an_undrifted_stream_is_ok_and_a_drifted_one_critical() -> None:
    rng = np.random.default_rng(11)
    train, names = _stream(rng, 100_000, drift=False)
    baseline = build_baseline(train, names)
    assert [f.kind for f in baseline.features][3:] == ["categorical", "categorical"]
    same, _ = _stream(rng, 200_000, drift=False)
    drifted, _ = _stream(rng, 200_000, drift=True)
    calm = compute_drift(baseline, same)
    assert calm.status == "OK" and calm.rows == 200_000
    # a p-value status flags 5% of undrifted categoricals as WARNING; PSI stays low
    assert all(f.psi is not None and f.psi < 0.01 for f in calm.features)
    assert calm.overall_psi is not None and calm.overall_psi < 0.01
    loud = compute_drift(baseline, {n: drifted[:, j] for j, n in enumerate(names)})
    assert loud.status == "CRITICAL"
    assert {f.status for f in loud.features} == {"CRITICAL"}
    assert loud.overall_psi is not None and loud.overall_psi >= 0.2
    json.dumps(loud.to_dict(), allow_nan=False)


def test_one_critical_feature_raises_a_calm_overall_status_to_warning() -> None:
    rng = np.random.default_rng(12)
    train = rng.normal(size=(20_000, 20)).astype(np.float32)
    live = rng.normal(size=(20_000, 20)).astype(np.float32)
    live[:, 0] += 1.0
    names = [f"f{j}" for j in range(20)]
    result = compute_drift(build_baseline(train, names), np.asfortranarray(live))
    assert result.features[0].status == "CRITICAL"
    assert result.overall_psi is not None and result.overall_psi < 0.1
    assert result.status == "WARNING"


def test_categorical_status_by_psi_when_asked() -> None:
    rng = np.random.default_rng(13)
    train = rng.integers(0, 4, 50_000).astype(np.float32)
    live = rng.choice(4, 50_000, p=[0.23, 0.25, 0.25, 0.27]).astype(np.float32)
    feature = _feature(train).feature("x")
    by_p = feature_drift(feature, live)
    by_psi = feature_drift(feature, live, DriftThresholds(categorical_test="psi"))
    assert by_p.chi_square_p is not None and by_p.chi_square_p < 0.01
    assert by_p.status == "CRITICAL" and by_psi.status == "OK"


def test_an_empty_window_is_no_data() -> None:
    baseline = build_baseline(np.ones((10, 2), np.float32) * [1.5, 2], ["a", "b"])
    result = compute_drift(baseline, np.empty((0, 2), np.float32))
    assert result.status == "NO_DATA" and result.overall_psi is None
    assert result.rows == 0
    for feature in result.features:
        assert feature.status == "NO_DATA" and feature.psi is None
        assert feature.ks_p is None and feature.chi_square_p is None


def test_thresholds_are_validated_and_inclusive() -> None:
    t = DriftThresholds()
    assert (t.psi_warning, t.psi_critical, t.p_warning, t.p_critical) == (
        0.1,
        0.2,
        0.05,
        0.01,
    )
    assert [t.psi_status(v) for v in (0.0999, 0.1, 0.2)] == [
        "OK",
        "WARNING",
        "CRITICAL",
    ]
    assert [t.p_status(p) for p in (0.05, 0.0499, 0.0099)] == [
        "OK",
        "WARNING",
        "CRITICAL",
    ]
    with pytest.raises(ValueError):
        DriftThresholds(psi_warning=0.3)
    with pytest.raises(ValueError):
        DriftThresholds(p_warning=0.001)


def test_current_data_must_match_the_baseline() -> None:
    baseline = build_baseline(np.zeros((5, 2), np.float32), ["a", "b"])
    with pytest.raises(KeyError, match="b"):
        compute_drift(baseline, {"a": np.zeros(3)})
    with pytest.raises(ValueError):
        compute_drift(baseline, {"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError):
        compute_drift(baseline, np.zeros((3, 3)))
