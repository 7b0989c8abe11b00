"""Threshold choice and evaluation metrics, returned as plain JSON-ready numbers."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

MAX_CURVE_POINTS = 200


def _sweep(
    y_true: npt.NDArray[Any], scores: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(thresholds desc, tp, fp) for the rule "fraud if score >= threshold"."""
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[
        np.flatnonzero(np.diff(s)), s.size - 1
    ]  # last index of each distinct score
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    return s[last], tp, fp


def choose_threshold(
    y_true: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    rule: Literal["max_f1", "cost"] = "max_f1",
    cost_ratio: float | None = None,
) -> float:
    """Operating threshold on validation scores.

    max_f1: the threshold maximising F1. cost: minimise ``cost_ratio * FN + FP`` (a missed
    fraud costs `cost_ratio` false alarms), so a larger ratio gives a lower threshold.
    Flagging nothing (threshold just above the top score) is a candidate for "cost".
    """
    thresholds, tp, fp = _sweep(y_true, scores)
    if thresholds.size == 0:
        raise ValueError("no scores to choose a threshold from")
    positives = float(tp[-1])
    if rule == "max_f1":
        f1 = np.divide(2 * tp, tp + fp + positives, out=np.zeros_like(tp), where=tp > 0)
        return float(thresholds[int(np.argmax(f1))])
    if rule == "cost":
        if cost_ratio is None or not cost_ratio > 0:
            raise ValueError("cost rule needs a positive cost_ratio")
        cost = cost_ratio * (positives - tp) + fp
        best = int(np.argmin(cost))
        if cost_ratio * positives < cost[best]:
            return float(np.nextafter(thresholds[0], np.inf))
        return float(thresholds[best])
    raise ValueError(f"unknown threshold rule {rule!r}")


def _downsample(*curves: npt.NDArray[Any]) -> list[list[float]]:
    n = curves[0].size
    if n > MAX_CURVE_POINTS:
        idx = np.unique(
            np.linspace(0, n - 1, MAX_CURVE_POINTS).round().astype(np.int64)
        )
        curves = tuple(c[idx] for c in curves)
    return [[float(v) for v in c] for c in curves]


def evaluate(
    y_true: npt.NDArray[Any], scores: npt.NDArray[Any], threshold: float
) -> dict[str, Any]:
    """Classification metrics at `threshold` plus threshold-free AUCs and curves.

    AUCs and curves are None when `y_true` holds a single class (they are undefined).
    """
    y = np.asarray(y_true).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    pred = s >= threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    both = 0 < tp + fn < y.size
    out: dict[str, Any] = {
        "precision": float(precision),
        "recall": float(recall),
        "f1_score": float(f1),
        "auc_roc": float(roc_auc_score(y, s)) if both else None,
        "auc_pr": float(average_precision_score(y, s)) if both else None,
        "fpr": float(fp / (fp + tn)) if fp + tn else 0.0,
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "threshold": float(threshold),
        "support": int(y.size),
        "positives": int(tp + fn),
        "roc_curve": None,
        "pr_curve": None,
    }
    if both:
        fpr, tpr, _ = roc_curve(y, s)
        prec, rec, _ = precision_recall_curve(y, s)
        f, t = _downsample(fpr, tpr)
        p, r = _downsample(prec, rec)
        out["roc_curve"] = {"fpr": f, "tpr": t}
        out["pr_curve"] = {"precision": p, "recall": r}
    return out
