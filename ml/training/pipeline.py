"""One training run's model work, from a feature matrix and its splits to a calibrated
model and an honest evaluation.

Everything that chooses (the search, early stopping, "auto" class weighting, the
calibration, the decision threshold) sees the fit and validation rows only; the test
rows are scored once, at the end, for the reported metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ml.scoring.transform import Float64Array
from ml.training.algorithms import get_algorithm, validate_hyperparameters
from ml.training.calibration import fit_calibration
from ml.training.metrics import choose_threshold, evaluate
from ml.training.model import TrainedModel, TrainingProgress
from ml.training.search import CANDIDATES, Trial, search, validation_ap
from ml.training.splits import Splits
from ml.training.trainer import train_model

# A missed fraud loses the goods and a chargeback fee; a false alarm costs a review or a
# declined good customer: ten to one is a common order of magnitude, in cost units.
DEFAULT_COST_MISSED_FRAUD = 10.0
DEFAULT_COST_FALSE_ALARM = 1.0
DEFAULT_SEARCH_SECONDS = 300.0

# (progress of the current fit, trial index, number of trials)
ProgressFn = Callable[[TrainingProgress, int, int], None]


@dataclass(frozen=True)
class ThresholdRule:
    """max_f1: the threshold with the best F1 on validation. cost: the one with the
    lowest ``cost_missed_fraud * FN + cost_false_alarm * FP`` on validation."""

    rule: Literal["max_f1", "cost"] = "max_f1"
    cost_missed_fraud: float = DEFAULT_COST_MISSED_FRAUD
    cost_false_alarm: float = DEFAULT_COST_FALSE_ALARM


@dataclass(frozen=True)
class FitPlan:
    algorithm: str
    hyperparameters: dict[str, Any] | None  # None: the built-in search
    threshold: ThresholdRule = field(default_factory=ThresholdRule)
    search_seconds: float = DEFAULT_SEARCH_SECONDS
    refit: bool = True
    seed: int = 42
    n_jobs: int = 2


@dataclass
class FitOutcome:
    model: TrainedModel  # its score transform carries the calibration, if any
    threshold: float
    test_scores: Float64Array
    metrics: dict[str, Any]
    val_scores: Float64Array | None = None  # the validated model's, for mitigation


def fit_and_evaluate(
    plan: FitPlan,
    X: npt.NDArray[Any],
    y: npt.NDArray[Any],
    splits: Splits,
    feature_names: list[str],
    *,
    on_progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    sample_weight: npt.NDArray[Any] | None = None,
) -> FitOutcome:
    """Fit (searching when no hyperparameters are given), calibrate, choose the
    threshold on validation, then score the test rows once. ``sample_weight`` (one per
    row of X) weighs the rows the models are fitted on; choices stay unweighted."""
    fit, val, test = splits.fit, splits.validation, splits.test
    X_val, y_val = X[val], y[val]

    def fit_one(params: dict[str, Any], trial: int, trials: int) -> TrainedModel:
        def progress(p: TrainingProgress) -> None:
            if on_progress is not None:
                on_progress(p, trial, trials)

        return train_model(
            plan.algorithm,
            params,
            X[fit],
            y[fit],
            X_val,
            y_val,
            feature_names,
            on_progress=progress,
            should_stop=should_stop,
            seed=plan.seed,
            n_jobs=plan.n_jobs,
            sample_weight=None if sample_weight is None else sample_weight[fit],
        )

    def fit_weighted(params: dict[str, Any], trial: int, trials: int) -> TrainedModel:
        full = validate_hyperparameters(plan.algorithm, params)
        if full.get("class_weight") != "auto":
            return fit_one(params, trial, trials)
        return best_class_weight(params, fit_one, trial, trials, X_val, y_val)

    trials: list[Trial] = []
    supervised = get_algorithm(plan.algorithm).supervised
    if plan.hyperparameters is None and supervised:
        n = len(CANDIDATES[plan.algorithm])
        model, trials = search(
            plan.algorithm,
            lambda params, i: fit_weighted(params, i, n),
            X_val,
            y_val,
            plan.search_seconds,
        )
    else:
        model = fit_weighted(dict(plan.hyperparameters or {}), 0, 1)

    raw_val = model.predict_scores(X_val)
    calibration = fit_calibration(raw_val, y_val)
    if calibration is not None:
        model.score_transform = {**model.score_transform, "calibration": calibration}
    val_scores = model.predict_scores(X_val)
    validated = model
    if plan.refit and splits.train.size > fit.size:
        model = _refit(
            plan, model, X, y, splits, feature_names, should_stop, sample_weight
        )
    rule = plan.threshold
    threshold = choose_threshold(
        y_val,
        val_scores,
        rule.rule,
        rule.cost_missed_fraud / rule.cost_false_alarm if rule.rule == "cost" else None,
    )
    test_scores = model.predict_scores(X[test])
    metrics = evaluate(y[test], test_scores, threshold)
    metrics.update(
        _extra_metrics(validated, plan, splits, y, test_scores, metrics, raw_val, y_val)
    )
    metrics["refit"] = model is not validated
    if calibration is not None:
        metrics["calibration"] = calibration["method"]
    if trials:
        metrics["search"] = [t.to_dict() for t in trials]
    return FitOutcome(model, threshold, test_scores, metrics, val_scores)


def _refit(
    plan: FitPlan,
    validated: TrainedModel,
    X: npt.NDArray[Any],
    y: npt.NDArray[Any],
    splits: Splits,
    feature_names: list[str],
    should_stop: Callable[[], bool] | None,
    sample_weight: npt.NDArray[Any] | None = None,
) -> TrainedModel:
    """The validated configuration fitted again on the whole training period (the most
    recent rows matter most for fraud), with the tree count early stopping chose. It
    keeps the validated model's calibration and threshold, which are on the probability
    scale."""
    params = dict(validated.params)
    used = validated.info.get("n_estimators_used")
    if used is not None:
        params.update(n_estimators=int(used), early_stopping_rounds=0)
    train = splits.train
    model = train_model(
        plan.algorithm,
        params,
        X[train],
        y[train],
        None,
        None,
        feature_names,
        should_stop=should_stop,
        seed=plan.seed,
        n_jobs=plan.n_jobs,
        sample_weight=None if sample_weight is None else sample_weight[train],
    )
    calibration = validated.score_transform.get("calibration")
    if calibration is not None:
        model.score_transform = {**model.score_transform, "calibration": calibration}
    if used is not None:
        model.info["n_estimators_used"] = used
    return model


def best_class_weight(
    params: dict[str, Any],
    fit_one: Callable[[dict[str, Any], int, int], TrainedModel],
    trial: int,
    trials: int,
    X_val: npt.NDArray[Any],
    y_val: npt.NDArray[Any],
) -> TrainedModel:
    """class_weight "auto": fit without and with weighting, keep the weighting only if
    validation average precision rises (the model's params name the choice)."""
    plain = fit_one({**params, "class_weight": "none"}, trial, trials)
    weighted = fit_one({**params, "class_weight": "balanced"}, trial, trials)
    ap_plain = validation_ap(plain, X_val, y_val)
    ap_weighted = validation_ap(weighted, X_val, y_val)
    if ap_plain is not None and ap_weighted is not None and ap_weighted > ap_plain:
        return weighted
    return plain


def _extra_metrics(
    model: TrainedModel,
    plan: FitPlan,
    splits: Splits,
    y: npt.NDArray[Any],
    test_scores: Float64Array,
    metrics: dict[str, Any],
    raw_val: Float64Array,
    y_val: npt.NDArray[Any],
) -> dict[str, Any]:
    rule = plan.threshold
    cm = metrics["confusion_matrix"]
    n_test = max(int(metrics["support"]), 1)
    cost = rule.cost_missed_fraud * cm["fn"] + rule.cost_false_alarm * cm["fp"]
    y_test = np.asarray(y[splits.test], dtype=np.float64)
    both = np.unique(np.asarray(y_val)).size == 2
    out: dict[str, Any] = {
        "threshold_source": "cost" if rule.rule == "cost" else "validation",
        "cost_missed_fraud": rule.cost_missed_fraud,
        "cost_false_alarm": rule.cost_false_alarm,
        "expected_cost_per_1000": float(1000.0 * cost / n_test),
        "brier_score": float(np.mean((test_scores - y_test) ** 2)),
        "validation_auc_pr": _ap(y_val, raw_val) if both else None,
        "rows_fit": int(splits.fit.size),
        "rows_validation": int(splits.validation.size),
        "rows_test": int(splits.test.size),
        "split": dict(splits.periods),
        "warnings": list(splits.warnings),
        "class_weight": model.params.get("class_weight"),
    }
    used = model.info.get("n_estimators_used")
    if used is not None:
        out["n_estimators_used"] = int(used)
    return out


def _ap(y: npt.NDArray[Any], scores: npt.NDArray[Any]) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, scores))
