"""`train_model`: validate, check data, dispatch to the algorithm's fitter."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.training.algorithms import get_algorithm, validate_hyperparameters
from ml.training.boosting import fit_lightgbm, fit_xgboost
from ml.training.model import (
    TrainedModel,
    TrainingCancelled,
    TrainingDataError,
    TrainingProgress,
    check_training_data,
)
from ml.training.sklearn_models import fit_isolation_forest, fit_neural_net

__all__ = [
    "TrainedModel",
    "TrainingCancelled",
    "TrainingDataError",
    "TrainingProgress",
    "check_sample_weight",
    "check_training_data",
    "train_model",
]

_FITTERS = {
    "xgboost": fit_xgboost,
    "lightgbm": fit_lightgbm,
    "isolation_forest": fit_isolation_forest,
    "neural_net": fit_neural_net,
}
NAN_TOLERANT = frozenset({"xgboost", "lightgbm"})


def train_model(
    algorithm: str,
    params: Mapping[str, Any],
    X_train: npt.NDArray[Any],
    y_train: npt.NDArray[Any] | None,
    X_val: npt.NDArray[Any] | None,
    y_val: npt.NDArray[Any] | None,
    feature_names: list[str],
    *,
    on_progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    seed: int = 42,
    n_jobs: int = 2,
    sample_weight: npt.NDArray[Any] | None = None,
) -> TrainedModel:
    """Fit one model. Raises HyperparameterError, TrainingDataError, TrainingCancelled.

    X is used as given (pass float32 C-contiguous to avoid copies); validation data only
    feeds progress metrics. Isolation Forest ignores `y_train` for fitting.
    `sample_weight`: one non-negative weight per training row (None: all equal).
    """
    spec = get_algorithm(algorithm)
    full = validate_hyperparameters(algorithm, params)
    if X_train.ndim == 2 and len(feature_names) != X_train.shape[1]:
        raise TrainingDataError(
            f"{len(feature_names)} feature names for {X_train.shape[1]} columns",
            "features",
        )
    allow_nan = algorithm in NAN_TOLERANT
    check_training_data(
        X_train,
        y_train if spec.supervised else None,
        spec.supervised,
        allow_nan=allow_nan,
    )
    if X_val is not None:
        if X_val.ndim != 2 or X_val.shape[1:] != X_train.shape[1:]:
            raise TrainingDataError(
                f"validation features have shape {X_val.shape}, training {X_train.shape}",
                "features",
            )
        check_training_data(X_val, y_val, False, allow_nan=allow_nan)
    if sample_weight is not None:
        check_sample_weight(sample_weight, X_train.shape[0])
    fitter = _FITTERS[algorithm]
    return fitter(
        full,
        X_train,
        y_train,
        X_val,
        y_val,
        list(feature_names),
        on_progress,
        should_stop,
        seed,
        n_jobs,
        sample_weight=sample_weight,
    )


def check_sample_weight(weight: npt.NDArray[Any], rows: int) -> None:
    w = np.asarray(weight, dtype=np.float64)
    if w.shape != (rows,):
        raise TrainingDataError(
            f"{w.size} sample weights for {rows} training rows", "sample_weight"
        )
    if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
        raise TrainingDataError(
            "sample weights must be finite, >= 0 and not all 0", "sample_weight"
        )
