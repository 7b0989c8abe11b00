"""Threshold rules and evaluation metrics, checked against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from ml.training import choose_threshold, evaluate


def _scores(n: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(np.int64)
    s = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 2.0 * y - 2.0)))
    return y, s


def test_max_f1_threshold_is_the_best_f1() -> None:
    y, s = _scores()
    t = choose_threshold(y, s, "max_f1")
    best = skm.f1_score(y, s >= t)
    for other in np.quantile(s, np.linspace(0.5, 0.999, 60)):
        assert skm.f1_score(y, s >= other) <= best + 1e-12


def test_cost_rule_lowers_threshold_as_missed_fraud_costs_more() -> None:
    y, s = _scores()
    cheap = choose_threshold(y, s, "cost", cost_ratio=1.0)
    dear = choose_threshold(y, s, "cost", cost_ratio=50.0)
    assert dear < cheap

    def cost(t: float, ratio: float) -> float:
        pred = s >= t
        return ratio * float(np.sum(~pred & (y == 1))) + float(np.sum(pred & (y == 0)))

    for other in np.quantile(s, np.linspace(0.0, 1.0, 80)):
        assert cost(dear, 50.0) <= cost(other, 50.0) + 1e-9
    with pytest.raises(ValueError):
        choose_threshold(y, s, "cost")


def test_evaluate_matches_sklearn() -> None:
    y, s = _scores()
    t = 0.4
    out = evaluate(y, s, t)
    json.dumps(out, allow_nan=False)
    pred = (s >= t).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert out["confusion_matrix"] == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert out["f1_score"] == pytest.approx(skm.f1_score(y, pred))
    assert out["auc_roc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["auc_pr"] == pytest.approx(skm.average_precision_score(y, s))
    assert out["fpr"] == pytest.approx(fp / (fp + tn))
    assert out["support"] == y.size and out["threshold"] == t
    for curve, keys in (
        ("roc_curve", ("fpr", "tpr")),
        ("pr_curve", ("precision", "recall")),
    ):
        a, b = (out[curve][k] for k in keys)
        assert 2 <= len(a) == len(b) <= 200
        assert all(isinstance(v, float) for v in a + b)


def test_evaluate_single_class_has_no_auc() -> None:
    out = evaluate(np.zeros(10), np.linspace(0, 1, 10), 0.5)
    assert out["auc_roc"] is None and out["recall"] == 0.0
    json.dumps(out, allow_nan=False)
