"""The training pipeline: every choice is made on validation rows, the test rows are
scored once for the reported metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ml.training.pipeline as pipeline
from ml.training import choose_threshold
from ml.training.pipeline import FitPlan, ThresholdRule, fit_and_evaluate
from ml.training.search import MAX_CONFIGURATIONS
from ml.training.splits import SplitPlan, make_splits

_DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """60 days of rows; column 0 is the row's index, to trace which rows a fit saw."""
    rng = np.random.default_rng(7)
    n = 6000
    X = rng.normal(size=(n, 6)).astype(np.float32)
    logit = 1.8 * X[:, 1] - 1.2 * X[:, 2] + 0.8 * X[:, 3] * X[:, 4] - 3.6
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float64)
    X[:, 0] = np.arange(n)
    ts = (np.arange(n) * (60 * _DAY // n)).astype(np.int64)
    return X, y, ts, ["row", "a", "b", "c", "d", "e"]


@pytest.mark.slow
def test_choices_see_validation_rows_only(
    data: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y, ts, names = data
    splits = make_splits(SplitPlan(gap="3d"), ts, y)
    seen: list[set[int]] = []
    real = pipeline.train_model

    def spy(
        algorithm: str,
        params: Any,
        X_fit: Any,
        y_fit: Any,
        X_val: Any,
        *a: Any,
        **k: Any,
    ) -> Any:
        rows = set(X_fit[:, 0].astype(int))
        seen.append(rows | (set() if X_val is None else set(X_val[:, 0].astype(int))))
        return real(algorithm, params, X_fit, y_fit, X_val, *a, **k)

    monkeypatch.setattr(pipeline, "train_model", spy)
    params = {"n_estimators": 300, "max_depth": 3}
    outcome = fit_and_evaluate(
        FitPlan("xgboost", params, refit=False), X, y, splits, names
    )
    test_rows = set(splits.test.tolist())
    assert seen and all(not rows & test_rows for rows in seen)
    val_scores = outcome.model.predict_scores(X[splits.validation])
    assert outcome.threshold == choose_threshold(y[splits.validation], val_scores)
    refitted = fit_and_evaluate(FitPlan("xgboost", params), X, y, splits, names)
    assert seen[-1] == set(splits.train.tolist()) and not seen[-1] & test_rows
    assert refitted.metrics["refit"] and not outcome.metrics["refit"]
    assert refitted.threshold == outcome.threshold  # chosen on validation, kept
    assert (
        refitted.model.score_transform["calibration"]
        == (outcome.model.score_transform["calibration"])
    )
    assert (
        refitted.model.info["n_estimators_used"] == outcome.metrics["n_estimators_used"]
    )
    metrics = outcome.metrics
    assert metrics["threshold_source"] == "validation"
    assert metrics["support"] == splits.test.size == metrics["rows_test"]
    assert np.allclose(
        outcome.test_scores, outcome.model.predict_scores(X[splits.test])
    )
    assert metrics["calibration"] in ("isotonic", "platt")
    assert metrics["n_estimators_used"] < 300  # stopped early on validation AP
    assert metrics["class_weight"] == "none"
    assert metrics["auc_roc"] > 0.75


def test_cost_rule_reports_the_expected_cost(data: tuple[Any, ...]) -> None:
    X, y, ts, names = data
    splits = make_splits(SplitPlan(gap="3d"), ts, y)
    rule = ThresholdRule("cost", cost_missed_fraud=50.0, cost_false_alarm=1.0)
    plan = FitPlan("lightgbm", {"n_estimators": 100}, threshold=rule, refit=False)
    outcome = fit_and_evaluate(plan, X, y, splits, names)
    metrics = outcome.metrics
    cm = metrics["confusion_matrix"]
    assert metrics["threshold_source"] == "cost"
    assert metrics["expected_cost_per_1000"] == pytest.approx(
        1000 * (50 * cm["fn"] + cm["fp"]) / splits.test.size
    )
    val_scores = outcome.model.predict_scores(X[splits.validation])
    assert outcome.threshold == choose_threshold(
        y[splits.validation], val_scores, "cost", 50.0
    )


@pytest.mark.slow
def test_search_without_hyperparameters_is_bounded(data: tuple[Any, ...]) -> None:
    X, y, ts, names = data
    splits = make_splits(SplitPlan(gap="3d"), ts, y)
    quick = fit_and_evaluate(
        FitPlan("xgboost", None, search_seconds=0), X, y, splits, names
    )
    assert len(quick.metrics["search"]) == 1  # the defaults, always tried
    full = fit_and_evaluate(
        FitPlan("lightgbm", None, search_seconds=600), X, y, splits, names
    )
    trials = full.metrics["search"]
    assert 1 < len(trials) <= MAX_CONFIGURATIONS
    best = max(t["validation_ap"] for t in trials)
    assert full.metrics["validation_auc_pr"] == pytest.approx(best)


@pytest.mark.slow
def test_auto_class_weight_keeps_weighting_only_if_validation_gains(
    data: tuple[Any, ...],
) -> None:
    X, y, ts, names = data
    splits = make_splits(SplitPlan(gap="3d"), ts, y)
    plan = FitPlan("xgboost", {"n_estimators": 60, "class_weight": "auto"})
    outcome = fit_and_evaluate(plan, X, y, splits, names)
    assert outcome.metrics["class_weight"] in ("none", "balanced")
    random = make_splits(SplitPlan(kind="random"), None, y)
    warned = fit_and_evaluate(
        FitPlan("xgboost", {"n_estimators": 20}), X, y, random, names
    )
    assert "random split" in warned.metrics["warnings"][0]
