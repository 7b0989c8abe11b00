"""Calibration: fitted on validation scores, applied the same way on every path."""

from __future__ import annotations

import numpy as np
import pytest

from ml.scoring import OnnxScorer, apply_score_transform
from ml.scoring.transform import (
    calibrate,
    calibrate_one,
    score_transform_one,
    uncalibrated,
)
from ml.training import train_model
from ml.training.calibration import MIN_ISOTONIC_POSITIVES, fit_calibration
from ml.training.onnx_export import onnx_max_abs_diff, to_onnx


def _stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true probability, label, a miscalibrated but well-ranked score)."""
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 6.0, n)
    y = (rng.random(n) < p).astype(np.int64)
    score = p**0.4  # monotone: the ranking is right, the probabilities are not
    return p, y, score


def _brier(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


@pytest.mark.parametrize(("n", "method"), [(20_000, "isotonic"), (800, "platt")])
def test_calibrated_scores_have_a_lower_brier_score(n: int, method: str) -> None:
    _, y_val, s_val = _stream(n, seed=1)
    cal = fit_calibration(s_val, y_val)
    assert cal is not None and cal["method"] == method
    assert (cal["validation_positives"] >= MIN_ISOTONIC_POSITIVES) == (
        method == "isotonic"
    )
    p, y, s = _stream(50_000, seed=2)  # a fresh stream from the same process
    calibrated = calibrate(s, cal)
    assert _brier(calibrated, y) < _brier(s, y) - 0.01
    assert abs(calibrated.mean() - p.mean()) < abs(s.mean() - p.mean())
    # ranking kept: no ties where the raw scores differ
    order = np.argsort(s)
    assert np.all(np.diff(calibrated[order]) >= 0)
    assert np.unique(calibrated).size == np.unique(s).size


def test_no_calibration_from_one_class() -> None:
    assert fit_calibration(np.array([0.1, 0.5, 0.9]), np.zeros(3)) is None


@pytest.mark.parametrize("n", [20_000, 800])
def test_one_score_equals_the_batch_score(n: int) -> None:
    _, y, s = _stream(n, seed=3)
    cal = fit_calibration(s, y)
    assert cal is not None
    probe = np.concatenate([np.linspace(0, 1, 501), s[:500], cal.get("x", [])[:50]])
    batch = calibrate(probe, cal)
    one = np.array([calibrate_one(float(v), cal) for v in probe])
    assert np.max(np.abs(batch - one)) < 1e-12
    transform = {"kind": "probability", "column": 1, "calibration": cal}
    raw = np.column_stack([1 - probe, probe])
    arrays = apply_score_transform(raw, transform)
    ones = [score_transform_one(float(v), transform) for v in probe]
    assert np.max(np.abs(arrays - np.array(ones))) < 1e-12


def test_served_scores_are_calibrated_and_onnx_matches_the_raw_model() -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(6000, 5)).astype(np.float32)
    logit = 1.5 * X[:, 0] - X[:, 1] - 3.5
    y = (rng.random(6000) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    names = list("abcde")
    model = train_model(
        "xgboost",
        {"n_estimators": 40, "class_weight": "balanced"},
        X[:4000],
        y[:4000],
        None,
        None,
        names,
    )
    raw_val = model.predict_scores(X[4000:5000])
    cal = fit_calibration(raw_val, y[4000:5000])
    assert cal is not None
    onnx = to_onnx(model)
    assert (
        onnx_max_abs_diff(model, onnx, X[5000:], uncalibrated(model.score_transform))
        < 1e-5
    )
    model.score_transform = {**model.score_transform, "calibration": cal}
    scorer = OnnxScorer(onnx, names, model.score_transform)
    batch = scorer.score(X[5000:])
    single = [
        scorer.score_one(dict(zip(names, row.tolist(), strict=True)))
        for row in X[5000:5200]
    ]
    assert np.max(np.abs(batch[:200] - np.array(single))) < 1e-9
    assert np.max(np.abs(batch - model.predict_scores(X[5000:]))) < 1e-4
    # balanced weighting inflates the raw probabilities; calibration brings them back
    raw_scorer = OnnxScorer(onnx, names, uncalibrated(model.score_transform))
    raw_scores = raw_scorer.score(X[5000:])
    assert _brier(batch, y[5000:]) < _brier(raw_scores, y[5000:])
    assert raw_scores.mean() > batch.mean()


def test_a_model_without_calibration_scores_as_before() -> None:
    raw = np.array([[0.9, 0.1], [0.2, 0.8]])
    plain = {"kind": "probability", "column": 1}
    assert apply_score_transform(raw, plain).tolist() == [0.1, 0.8]
    assert uncalibrated({**plain, "calibration": {"method": "platt"}}) == plain
