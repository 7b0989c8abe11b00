"""Fairness mitigation beside a plain model, with Fairlearn, and the trade-off report.

- ``threshold_optimizer``: Fairlearn's ``ThresholdOptimizer`` (prefit, objective
  balanced accuracy, since plain accuracy at a few percent fraud selects nobody) on the
  plain model's validation scores. Its predictor is randomized; serving needs one
  deterministic threshold per group, so each group's threshold is the quantile of that
  group's validation scores that selects the share the optimizer selects in expectation
  (same selection rate per group). Groups are the attribute column's raw values; a
  group with one class only in the validation rows keeps the global threshold.
- ``exponentiated_gradient``: Fairlearn's reduction around a logistic regression on
  standardized features, bounded in time: at most ``EG_MAX_ROWS`` training rows
  (stratified subsample) and ``EG_MAX_ITER`` iterations. Its randomized ensemble has no
  ONNX export: it is reported, not served.

Pure: numpy, scikit-learn and Fairlearn only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.fairness.metrics import confusion_by_group, disparities, rates

THRESHOLD_OPTIMIZER = "threshold_optimizer"
EXPONENTIATED_GRADIENT = "exponentiated_gradient"
DEMOGRAPHIC_PARITY = "demographic_parity"
EQUALIZED_ODDS = "equalized_odds"
EG_MAX_ROWS = 20_000
EG_MAX_ITER = 20
EG_EPS = 0.01


@dataclass(frozen=True)
class MitigationPlan:
    method: str
    constraint: str
    attribute: str
    seed: int = 0


@dataclass
class Mitigated:
    """The report for both models, and what serving needs (threshold_optimizer)."""

    method: str
    constraint: str
    attribute: str
    plain: dict[str, float | None]
    mitigated: dict[str, float | None]
    group_thresholds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "constraint": self.constraint,
            "attribute": self.attribute,
            "plain": self.plain,
            "mitigated": self.mitigated,
        }
        if self.group_thresholds:
            out["group_thresholds"] = self.group_thresholds
        return out


def group_keys(values: npt.ArrayLike) -> npt.NDArray[np.str_]:
    """An attribute column's raw values as the string keys thresholds are stored by."""
    return np.asarray([str(v) for v in np.asarray(values, dtype=object)], dtype=str)


def tradeoff(
    y: npt.ArrayLike,
    scores: npt.ArrayLike | None,
    decisions: npt.ArrayLike,
    groups: npt.ArrayLike,
) -> dict[str, float | None]:
    """AUC (when scores are given and both classes present), precision, recall and the
    four disparity metrics of 0/1 decisions over the groups."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y).astype(np.int64)
    pred = np.asarray(decisions).astype(np.int64)
    tp = int(((pred == 1) & (y_true == 1)).sum())
    out: dict[str, float | None] = {
        "auc_roc": None,
        "precision": tp / int(pred.sum()) if pred.sum() else 0.0,
        "recall": tp / int(y_true.sum()) if y_true.sum() else None,
    }
    if scores is not None and len(np.unique(y_true)) == 2:
        out["auc_roc"] = float(roc_auc_score(y_true, np.asarray(scores)))
    names, codes = np.unique(group_keys(groups), return_inverse=True)
    values = disparities(rates(confusion_by_group(codes, len(names), y_true, pred)))
    for metric, value in values.items():
        v = float(value)
        out[metric] = None if np.isnan(v) else v
    return out


def _score_estimator() -> Any:
    """A prefit scikit-learn 'estimator' whose input is the score itself (one column)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Scores(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
        fitted_ = True

        def fit(self, X: Any, y: Any) -> Any:
            return self

        def predict(self, X: Any) -> npt.NDArray[np.float64]:
            return np.asarray(X, dtype=np.float64)[:, 0]

    return Scores()


def fit_group_thresholds(
    val_scores: npt.ArrayLike,
    y_val: npt.ArrayLike,
    val_groups: npt.ArrayLike,
    constraint: str,
    seed: int = 0,
) -> dict[str, float]:
    """Deterministic per-group thresholds from Fairlearn's ThresholdOptimizer."""
    from fairlearn.postprocessing import ThresholdOptimizer

    scores = np.asarray(val_scores, dtype=np.float64)
    keys = group_keys(val_groups)
    labels = np.asarray(y_val).astype(np.int64)
    # Fairlearn needs both classes in every group: a group with one class only in the
    # validation rows keeps the global threshold (left out of the result)
    both = [k for k in np.unique(keys) if len(np.unique(labels[keys == k])) == 2]
    if len(both) < 2:
        return {}
    kept = np.isin(keys, both)
    scores, keys, labels = scores[kept], keys[kept], labels[kept]
    optimizer = ThresholdOptimizer(
        estimator=_score_estimator(),
        constraints=constraint,
        objective="balanced_accuracy_score",
        prefit=True,
        predict_method="predict",
    )
    X = scores.reshape(-1, 1)
    optimizer.fit(X, labels, sensitive_features=keys)
    selected = optimizer._pmf_predict(X, sensitive_features=keys)[:, 1]
    thresholds: dict[str, float] = {}
    for key in np.unique(keys):
        mask = keys == key
        share = float(selected[mask].mean())
        group_scores = np.sort(scores[mask])
        if share <= 0.0:
            thresholds[str(key)] = float(np.nextafter(group_scores[-1], np.inf))
            continue
        # the score at or above which `share` of the group's rows fall
        index = max(
            0, min(len(group_scores) - 1, int(round((1 - share) * len(group_scores))))
        )
        thresholds[str(key)] = float(group_scores[index])
    return thresholds


def apply_group_thresholds(
    scores: npt.ArrayLike,
    groups: npt.ArrayLike,
    thresholds: Mapping[str, float],
    default: float,
) -> npt.NDArray[np.int64]:
    """score >= the row's group threshold (the global one for an unknown group)."""
    s = np.asarray(scores, dtype=np.float64)
    limits = np.asarray(
        [thresholds.get(k, default) for k in group_keys(groups)], dtype=np.float64
    )
    return (s >= limits).astype(np.int64)


def exponentiated_gradient(
    X_fit: npt.NDArray[Any],
    y_fit: npt.ArrayLike,
    groups_fit: npt.ArrayLike,
    constraint: str,
    seed: int = 0,
) -> Callable[[npt.NDArray[Any]], npt.NDArray[np.float64]]:
    """A fitted ExponentiatedGradient (bounded: subsample, few iterations), as the
    function giving its probability of flagging each row."""
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
        ExponentiatedGradient,
    )
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y_fit).astype(np.int64)
    keys = group_keys(groups_fit)
    X = np.nan_to_num(np.asarray(X_fit, dtype=np.float64))
    if len(y) > EG_MAX_ROWS:
        from sklearn.model_selection import train_test_split

        index, _ = train_test_split(
            np.arange(len(y)), train_size=EG_MAX_ROWS, stratify=y, random_state=seed
        )
        X, y, keys = X[index], y[index], keys[index]
    moment = (
        DemographicParity() if constraint == DEMOGRAPHIC_PARITY else EqualizedOdds()
    )
    scaler = StandardScaler().fit(X)
    reduction = ExponentiatedGradient(
        LogisticRegression(max_iter=200, class_weight="balanced"),
        constraints=moment,
        eps=EG_EPS,
        max_iter=EG_MAX_ITER,
    )
    reduction.fit(scaler.transform(X), y, sensitive_features=keys)

    def flag_probability(rows: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        scaled = scaler.transform(np.nan_to_num(np.asarray(rows, dtype=np.float64)))
        return np.asarray(reduction._pmf_predict(scaled)[:, 1], dtype=np.float64)

    return flag_probability


def mitigate(
    plan: MitigationPlan,
    *,
    threshold: float,
    y_val: npt.ArrayLike,
    val_scores: npt.ArrayLike,
    val_groups: npt.ArrayLike,
    y_test: npt.ArrayLike,
    test_scores: npt.ArrayLike,
    test_groups: npt.ArrayLike,
    X_fit: npt.NDArray[Any] | None = None,
    y_fit: npt.ArrayLike | None = None,
    fit_groups: npt.ArrayLike | None = None,
    X_test: npt.NDArray[Any] | None = None,
) -> Mitigated:
    """The mitigated model beside the plain one, both reported on the test rows."""
    plain_decisions = (np.asarray(test_scores) >= threshold).astype(np.int64)
    plain = tradeoff(y_test, test_scores, plain_decisions, test_groups)
    if plan.method == THRESHOLD_OPTIMIZER:
        thresholds = fit_group_thresholds(
            val_scores, y_val, val_groups, plan.constraint, plan.seed
        )
        decisions = apply_group_thresholds(
            test_scores, test_groups, thresholds, threshold
        )
        mitigated = tradeoff(y_test, test_scores, decisions, test_groups)
        return Mitigated(
            plan.method, plan.constraint, plan.attribute, plain, mitigated, thresholds
        )
    if X_fit is None or y_fit is None or fit_groups is None or X_test is None:
        raise ValueError("exponentiated_gradient needs the training rows")
    reduction = exponentiated_gradient(
        X_fit, y_fit, fit_groups, plan.constraint, plan.seed
    )
    scores = reduction(X_test)
    decisions = (scores >= 0.5).astype(np.int64)
    mitigated = tradeoff(y_test, scores, decisions, test_groups)
    return Mitigated(plan.method, plan.constraint, plan.attribute, plain, mitigated)
