"""The trained-model value object, progress record, and training errors."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.scoring.transform import Float64Array, apply_score_transform


@dataclass
class TrainingProgress:
    iteration: int  # 1-based count of finished iterations (trees, epochs)
    total_iterations: int
    train_loss: float | None
    val_loss: float | None
    val_auc: float | None


class TrainingCancelled(Exception):
    """Raised when `should_stop()` asked training to end."""


class TrainingDataError(ValueError):
    """Training data unusable; `field` names the culprit (target, features, ...)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_training_data(
    X: npt.NDArray[Any],
    y: npt.NDArray[Any] | None,
    supervised: bool,
    *,
    allow_nan: bool = False,
) -> None:
    """Reject data a model cannot learn from, before spending minutes on it.

    Infinite features are always rejected; NaN only when `allow_nan` is False (the
    boosters treat NaN as "missing" natively, the sklearn models cannot).
    """
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise TrainingDataError(
            f"feature matrix must be 2-D and non-empty, got {X.shape}", "features"
        )
    if not np.issubdtype(X.dtype, np.number):
        raise TrainingDataError("features must be numeric", "features")
    if np.isinf(X).any():
        raise TrainingDataError("features contain infinite values", "features")
    if not allow_nan and np.isnan(X).any():
        raise TrainingDataError("features contain NaN (missing) values", "features")
    if not supervised and y is None:
        return
    if y is None:
        raise TrainingDataError("a target column is required", "target_column")
    labels = np.asarray(y)
    if labels.shape != (X.shape[0],):
        raise TrainingDataError(
            f"target has shape {labels.shape}, expected ({X.shape[0]},)",
            "target_column",
        )
    if not np.issubdtype(labels.dtype, np.number) and labels.dtype != np.bool_:
        raise TrainingDataError("target must be numeric 0/1", "target_column")
    values = labels.astype(np.float64)
    if np.isnan(values).any():
        raise TrainingDataError("target has missing values", "target_column")
    if not np.isin(values, (0.0, 1.0)).all():
        raise TrainingDataError("target must be binary 0/1", "target_column")
    if supervised and np.unique(values).size < 2:
        raise TrainingDataError(
            "training data holds only one class; need both fraud and legitimate rows",
            "target_column",
        )


@dataclass
class TrainedModel:
    """A fitted model plus what scoring needs: feature order and score transform.

    `model` is an xgboost.Booster, lightgbm.Booster, sklearn IsolationForest, or a sklearn
    Pipeline(StandardScaler, MLPClassifier).
    """

    algorithm: str
    params: dict[str, Any]
    feature_names: list[str]
    model: Any
    score_transform: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def raw_output(self, X: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """The native counterpart of the ONNX output the transform reads."""
        if self.algorithm == "xgboost":
            import xgboost as xgb

            return np.asarray(self.model.predict(xgb.DMatrix(X)))
        if self.algorithm == "lightgbm":
            return np.asarray(self.model.predict(X))
        if self.algorithm == "isolation_forest":
            return np.asarray(self.model.decision_function(X))
        return np.asarray(self.model.predict_proba(X))

    def predict_scores(self, X: npt.NDArray[Any]) -> Float64Array:
        """Fraud score in [0, 1], float64."""
        return apply_score_transform(self.raw_output(X), self.score_transform)

    def save_native(self, path: Path) -> None:
        """xgboost: .ubj/.json by suffix; lightgbm: text model; sklearn: pickle."""
        path = Path(path)
        if self.algorithm == "xgboost":
            self.model.save_model(str(path))
        elif self.algorithm == "lightgbm":
            self.model.save_model(str(path))
        else:
            path.write_bytes(pickle.dumps(self.model, protocol=pickle.HIGHEST_PROTOCOL))

    def feature_importance(self) -> dict[str, float]:
        """Importance per feature, summing to 1 (all zero if the model used none).

        Trees (xgboost/lightgbm): total gain. Isolation Forest: how often each feature is
        used for a split. MLP: mean |first-layer weight| per (standardised) input, a cheap
        proxy with no data pass.
        """
        n = len(self.feature_names)
        raw = np.zeros(n, dtype=np.float64)
        if self.algorithm == "xgboost":
            for key, value in self.model.get_score(
                importance_type="total_gain"
            ).items():
                raw[int(key[1:])] = float(value)
        elif self.algorithm == "lightgbm":
            raw[:] = self.model.feature_importance(importance_type="gain")
        elif self.algorithm == "isolation_forest":
            for tree, feats in zip(
                self.model.estimators_, self.model.estimators_features_, strict=True
            ):
                used = tree.tree_.feature
                used = used[used >= 0]
                np.add.at(raw, np.asarray(feats)[used], 1.0)
        else:
            mlp = self.model[-1]
            raw[:] = np.abs(mlp.coefs_[0]).mean(axis=1)
        total = float(raw.sum())
        if total > 0:
            raw /= total
        return {name: float(v) for name, v in zip(self.feature_names, raw, strict=True)}
