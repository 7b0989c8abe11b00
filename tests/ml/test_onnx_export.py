"""ONNX export agrees with the native model for every algorithm (the promotion gate)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification

from ml.scoring import OnnxScorer
from ml.training import train_model
from ml.training.onnx_export import onnx_max_abs_diff, to_onnx

PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 25, "max_depth": 5},
    "lightgbm": {"n_estimators": 25, "num_leaves": 15},
    "neural_net": {"max_iter": 4, "hidden_layer_sizes": "32,16"},
    "isolation_forest": {"n_estimators": 30, "contamination": 0.02},
}
NAMES = [f"amount_{i}" for i in range(10)]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        4000, 10, n_informative=5, weights=[0.97], random_state=11
    )
    return X.astype(np.float32), y


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(PARAMS))
def test_onnx_matches_native(
    algorithm: str, data: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = data
    model = train_model(
        algorithm, PARAMS[algorithm], X[:3000], y[:3000], None, None, NAMES
    )
    onnx_bytes = to_onnx(model)
    assert onnx_max_abs_diff(model, onnx_bytes, X) <= 1e-4
    assert onnx_max_abs_diff(model, onnx_bytes, X.astype(np.float64)) <= 1e-4

    scorer = OnnxScorer(onnx_bytes, model.feature_names, model.score_transform)
    scores = scorer.score(X[3000:])
    assert scores.dtype == np.float64 and scores.shape == (1000,)
    row = dict(zip(NAMES, X[3000].tolist(), strict=True))
    assert scorer.score_one(row) == pytest.approx(scores[0], abs=1e-6)


def test_xgboost_with_missing_values(data: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = data
    X = X.copy()
    X[::7, 2] = np.nan
    model = train_model("xgboost", PARAMS["xgboost"], X, y, None, None, NAMES)
    onnx_bytes = to_onnx(model)
    assert onnx_max_abs_diff(model, onnx_bytes, X) <= 1e-4
    scorer = OnnxScorer(onnx_bytes, NAMES, model.score_transform)
    partial = {name: float(X[1, i]) for i, name in enumerate(NAMES) if i != 2}
    full = X[1:2].copy()
    full[0, 2] = np.nan
    assert scorer.score_one(partial) == pytest.approx(
        model.predict_scores(full)[0], abs=1e-6
    )
