"""The built-in search run when a request gives no hyperparameters: at most a dozen
configurations per algorithm, tried in a fixed order (the defaults first) until a time
budget runs out, each fitted on the fit rows and judged by average precision on the
validation rows. The test rows take no part.

The candidates vary what matters most for boosted trees on tabular data (tree size, row
and column sampling, leaf regularisation) around the defaults; they are not tuned to any
one data set. Boosters stop early on validation AP, so the number of trees is searched
too. `class_weight` stays at the defaults' "none" except in one candidate, so a gain from
weighting has to show on validation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score

from ml.training.model import TrainedModel

MAX_CONFIGURATIONS = 12

CANDIDATES: dict[str, tuple[dict[str, Any], ...]] = {
    "xgboost": (
        {},
        {"max_depth": 4},
        {"max_depth": 8, "min_child_weight": 5.0},
        {"subsample": 0.8, "colsample_bytree": 0.8},
        {"max_depth": 4, "subsample": 0.8, "colsample_bytree": 0.6},
        {"max_depth": 8, "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 10.0},
        {"learning_rate": 0.05, "subsample": 0.8, "colsample_bytree": 0.8},
        {"max_depth": 3, "learning_rate": 0.2},
        {"min_child_weight": 10.0, "reg_lambda": 5.0},
        {"max_depth": 10, "min_child_weight": 10.0, "colsample_bytree": 0.5},
        {"gamma": 1.0, "subsample": 0.8},
        {"class_weight": "balanced"},
    ),
    "lightgbm": (
        {},
        {"num_leaves": 15},
        {"num_leaves": 63, "min_child_samples": 50},
        {"subsample": 0.8, "colsample_bytree": 0.8},
        {"num_leaves": 15, "subsample": 0.8, "colsample_bytree": 0.6},
        {"num_leaves": 127, "min_child_samples": 100, "reg_lambda": 10.0},
        {"learning_rate": 0.05, "subsample": 0.8, "colsample_bytree": 0.8},
        {"num_leaves": 7, "learning_rate": 0.2},
        {"min_child_samples": 100, "reg_lambda": 5.0},
        {"num_leaves": 255, "min_child_samples": 200, "colsample_bytree": 0.5},
        {"reg_alpha": 1.0, "subsample": 0.8},
        {"class_weight": "balanced"},
    ),
    "neural_net": (
        {},
        {"hidden_layer_sizes": "32"},
        {"hidden_layer_sizes": "128,64"},
        {"alpha": 1e-3},
        {"learning_rate_init": 3e-3},
        {"hidden_layer_sizes": "128,64,32", "alpha": 1e-3},
        {"activation": "tanh"},
        {"batch_size": 1024, "learning_rate_init": 3e-3},
    ),
    "isolation_forest": ({},),
}

Fit = Callable[[dict[str, Any], int], TrainedModel]  # (params, trial index) -> model


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    validation_ap: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "validation_ap": self.validation_ap,
            "seconds": round(self.seconds, 3),
        }


def validation_ap(
    model: TrainedModel, X_val: npt.NDArray[Any], y_val: npt.NDArray[Any]
) -> float | None:
    if np.unique(np.asarray(y_val)).size < 2:
        return None
    return float(average_precision_score(y_val, model.predict_scores(X_val)))


def search(
    algorithm: str,
    fit: Fit,
    X_val: npt.NDArray[Any],
    y_val: npt.NDArray[Any],
    budget_seconds: float,
) -> tuple[TrainedModel, list[Trial]]:
    """Try the candidates in order while time is left (the first always runs); the
    model with the best validation AP and every trial's figures."""
    candidates = CANDIDATES[algorithm][:MAX_CONFIGURATIONS]
    start = time.monotonic()
    trials: list[Trial] = []
    best: tuple[float, TrainedModel] | None = None
    for i, params in enumerate(candidates):
        if i and time.monotonic() - start >= budget_seconds:
            break
        t0 = time.monotonic()
        model = fit(dict(params), i)
        ap = validation_ap(model, X_val, y_val)
        trials.append(Trial(dict(params), ap, time.monotonic() - t0))
        score = -1.0 if ap is None else ap
        if best is None or score > best[0]:
            best = (score, model)
    assert best is not None
    return best[1], trials
