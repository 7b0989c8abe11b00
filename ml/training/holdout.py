"""Champion against challenger on one holdout: both scored in batches through their
ONNX exports (the path /predict serves), then the same metrics for each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.scoring.onnx_scorer import OnnxScorer
from ml.training.metrics import evaluate

SCORE_CHUNK = 250_000  # rows per ONNX call
HOLDOUT_METRICS = (
    "auc_roc",
    "auc_pr",
    "precision",
    "recall",
    "f1_score",
    "fpr",
    "threshold",
    "support",
    "positives",
)


def score_columns(
    scorer: OnnxScorer, names: Sequence[str], X: npt.NDArray[Any]
) -> npt.NDArray[np.float64]:
    """Scores of the rows of ``X`` (columns ``names``), in the model's feature order:
    a feature the matrix lacks is missing (NaN) for every row."""
    parts = [
        scorer.score(scorer.matrix_of_columns(names, X[lo : lo + SCORE_CHUNK]))
        for lo in range(0, len(X), SCORE_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.empty(0, np.float64)


def holdout_metrics(
    y: npt.NDArray[Any], scores: npt.NDArray[Any], threshold: float
) -> dict[str, Any]:
    """AUC, average precision (``auc_pr``), precision, recall, F1 and FPR at the
    model's own threshold, plus the confusion matrix; AUCs None for one class."""
    full = evaluate(y, scores, threshold)
    out = {k: full[k] for k in HOLDOUT_METRICS}
    out["confusion_matrix"] = full["confusion_matrix"]
    return out
