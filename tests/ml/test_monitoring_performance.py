"""Realised metrics, CBPE estimates against realised ones, calibration, concept status.

Tolerances for the CBPE checks (200,000 predictions, fraud rate near 6 %): about five
standard deviations of the estimate's error over repeated draws: precision 0.03, recall
0.01, AUC 0.01.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import auc, precision_score, recall_score, roc_auc_score

from ml.monitoring.performance import (
    Calibrator,
    ConceptThresholds,
    Metrics,
    concept_drift,
    estimated_auc,
    estimated_metrics,
    fit_calibrator,
    realised_metrics,
)

TOLERANCE = {"precision": 0.03, "recall": 0.01, "auc": 0.01}


def _calibrated_stream(seed: int, n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: calibrated by construction."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.5, 8, n)
    return p, (rng.random(n) < p).astype(np.float64)


def test_realised_metrics_match_scikit_learn() -> None:
    p, y = _calibrated_stream(1, 20_000)
    result = realised_metrics(y, p, 0.3)
    flagged = p >= 0.3
    assert result.count == 20_000
    assert result.precision == pytest.approx(precision_score(y, flagged))
    assert result.recall == pytest.approx(recall_score(y, flagged))
    assert result.auc == pytest.approx(roc_auc_score(y, p))
    empty = realised_metrics([0, 0], [0.1, 0.9], 0.95)
    assert (empty.precision, empty.recall, empty.auc) == (None, None, None)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_cbpe_estimate_is_close_to_realised_on_a_calibrated_stream(seed: int) -> None:
    p, y = _calibrated_stream(seed)
    estimate = estimated_metrics(p, 0.3)
    realised = realised_metrics(y, p, 0.3)
    for name, tolerance in TOLERANCE.items():
        assert estimate.get(name) == pytest.approx(realised.get(name), abs=tolerance)


def test_cbpe_with_an_isotonic_calibrator_of_raw_scores() -> None:
    p, y = _calibrated_stream(5, 400_000)
    raw = np.sqrt(p)  # a monotone but badly calibrated model output
    calibrator = fit_calibrator(raw[:200_000], y[:200_000])  # the held-out split
    again = Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    live_raw, live_y = raw[200_000:], y[200_000:]
    threshold = float(np.sqrt(0.3))
    uncalibrated = estimated_metrics(live_raw, threshold)
    estimate = estimated_metrics(again.apply(live_raw), threshold, live_raw)
    realised = realised_metrics(live_y, live_raw, threshold)
    for name, tolerance in TOLERANCE.items():
        assert estimate.get(name) == pytest.approx(realised.get(name), abs=tolerance)
    assert abs(uncalibrated.precision - realised.precision) > 0.1  # type: ignore[operator]


def test_estimated_auc_is_nannymls_formula_when_scores_are_distinct() -> None:
    p, _ = _calibrated_stream(6, 5_000)
    order = np.argsort(p)[::-1]
    tps = np.r_[0, np.cumsum(p[order])]
    fps = np.r_[0, 1 + np.arange(p.size) - tps[1:]]
    expected = auc(fps / fps[-1], tps / tps[-1])
    assert estimated_auc(p) == pytest.approx(expected, abs=1e-9)


def test_estimated_auc_takes_tied_scores_together() -> None:
    # two tied scores: one curve point for both, whatever their order
    p = np.array([0.9, 0.5, 0.5, 0.1])
    scores = np.array([3.0, 2.0, 2.0, 1.0])
    tps = np.array([0, 0.9, 1.9, 2.0]) / 2.0
    fps = np.array([0, 0.1, 1.1, 2.0]) / 2.0
    assert estimated_auc(p, scores) == pytest.approx(float(np.trapezoid(tps, fps)))
    assert estimated_auc([1.0, 1.0]) is None  # no expected negatives


def _baseline() -> Metrics:
    return Metrics(count=100_000, precision=0.40, recall=0.12, auc=0.83)


def test_concept_drift_uses_realised_metrics_once_enough_labels_arrived() -> None:
    p, y = _calibrated_stream(7)
    labels = y.copy()
    labels[50_000:] = np.nan  # only the first quarter labelled
    result = concept_drift(_baseline(), p, p, labels, 0.3)
    assert result.source == "realised" and result.labelled_count == 50_000
    assert result.realised is not None and result.realised.count == 50_000
    assert result.estimated.count == 200_000
    assert result.status == "OK"
    for name, tolerance in TOLERANCE.items():
        error = result.estimation_error[name]
        assert error is not None and abs(error) <= 2 * tolerance
    data = result.to_dict()
    assert data["current_precision"] == result.realised.precision
    assert data["performance_degradation"] == pytest.approx(
        result.realised.precision - 0.40  # type: ignore[operator]
    )
    json.dumps(data, allow_nan=False)


def test_concept_drift_without_labels_follows_the_estimate() -> None:
    p, _ = _calibrated_stream(8)
    worse = np.clip(p * 0.6, 0, 1)  # the model now finds fewer frauds at its threshold
    result = concept_drift(_baseline(), worse, worse, np.full(p.size, np.nan), 0.3)
    assert result.source == "estimated" and result.realised is None
    assert result.estimation_error == {"precision": None, "recall": None, "auc": None}
    assert result.status == "CRITICAL"  # recall falls by far more than 0.10
    few = concept_drift(
        _baseline(), p, p, np.r_[np.ones(10), np.full(p.size - 10, np.nan)], 0.3
    )
    assert few.source == "estimated" and few.labelled_count == 10


def test_concept_drift_thresholds_and_empty_windows() -> None:
    empty = concept_drift(_baseline(), [], [], [], 0.3)
    assert empty.status == "NO_DATA"
    p, y = _calibrated_stream(9)
    strict = ConceptThresholds(drop_warning=0.0, drop_critical=0.5)
    assert concept_drift(_baseline(), p, p, y, 0.3, strict).status == "WARNING"
    with pytest.raises(ValueError):
        ConceptThresholds(drop_warning=0.2, drop_critical=0.1)
    with pytest.raises(ValueError):
        concept_drift(_baseline(), [0.1], [0.1, 0.2], [1], 0.3)
