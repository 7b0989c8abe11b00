"""Each algorithm trains, reports progress, cancels and rejects bad data."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from ml.training import (
    TrainingCancelled,
    TrainingDataError,
    TrainingProgress,
    check_training_data,
    train_model,
)

FAST: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 30, "max_depth": 4},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
    "neural_net": {
        "max_iter": 8,
        "hidden_layer_sizes": "32",
        "class_weight": "balanced",
    },
    "isolation_forest": {"n_estimators": 40},
}
NAMES = [f"f_{i}" for i in range(12)]


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, ...]:
    X, y = make_classification(
        6000, 12, n_informative=6, weights=[0.97], flip_y=0.005, random_state=3
    )
    X = X.astype(np.float32)
    return X[:4500], y[:4500], X[4500:], y[4500:]


@pytest.fixture(scope="module")
def outliers() -> tuple[np.ndarray, ...]:
    """Legit rows in a tight blob, fraud rows far out: what Isolation Forest can see."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(5000, 8)).astype(np.float32)
    y = (rng.random(5000) < 0.03).astype(np.int64)
    X[y == 1] += rng.choice([-4.0, 4.0], size=(int(y.sum()), 8)).astype(np.float32)
    return X[:3500], y[:3500], X[3500:], y[3500:]


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm", "neural_net"])
def test_supervised_trains_and_reports_progress(
    algorithm: str, data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    Xtr, ytr, Xva, yva = data
    seen: list[TrainingProgress] = []
    model = train_model(
        algorithm, FAST[algorithm], Xtr, ytr, Xva, yva, NAMES, on_progress=seen.append
    )
    scores = model.predict_scores(Xva)
    assert scores.dtype == np.float64 and scores.min() >= 0.0 and scores.max() <= 1.0
    assert roc_auc_score(yva, scores) > 0.75
    iterations = [p.iteration for p in seen]
    assert (
        iterations == sorted(set(iterations))
        and iterations[-1] == seen[-1].total_iterations
    )
    assert seen[-1].val_auc is not None and seen[-1].val_auc > 0.75
    assert seen[-1].train_loss is not None and seen[-1].val_loss is not None
    importance = model.feature_importance()
    assert list(importance) == NAMES and sum(importance.values()) == pytest.approx(1.0)
    path = tmp_path / "model.bin"
    model.save_native(path)
    assert path.stat().st_size > 0


@pytest.mark.slow
def test_xgboost_save_native_round_trips(
    data: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    import xgboost as xgb

    Xtr, ytr, Xva, yva = data
    model = train_model("xgboost", FAST["xgboost"], Xtr, ytr, Xva, yva, NAMES)
    model.save_native(tmp_path / "m.ubj")
    loaded = xgb.Booster(model_file=str(tmp_path / "m.ubj"))
    assert np.allclose(loaded.predict(xgb.DMatrix(Xva)), model.predict_scores(Xva))
    assert model.info["scale_pos_weight"] == 1.0  # no class weighting by default
    weighted = train_model(
        "xgboost",
        {**FAST["xgboost"], "class_weight": "balanced"},
        Xtr,
        ytr,
        Xva,
        yva,
        NAMES,
    )
    assert weighted.info["scale_pos_weight"] > 10


def test_isolation_forest_unsupervised(
    outliers: tuple[np.ndarray, ...], tmp_path: Path
) -> None:
    Xtr, _, Xva, yva = outliers
    seen: list[TrainingProgress] = []
    names = NAMES[:8]
    model = train_model(
        "isolation_forest",
        FAST["isolation_forest"],
        Xtr,
        None,
        Xva,
        yva,
        names,
        on_progress=seen.append,
    )
    scores = model.predict_scores(Xva)
    assert 0.0 <= scores.min() and scores.max() <= 1.0
    assert roc_auc_score(yva, scores) > 0.5
    assert [p.iteration for p in seen] == [10, 20, 30, 40]
    assert seen[-1].val_auc is not None and seen[-1].train_loss is None
    assert model.score_transform["kind"] == "logistic"
    model.save_native(tmp_path / "if.pkl")
    restored = pickle.loads((tmp_path / "if.pkl").read_bytes())
    assert np.allclose(restored.decision_function(Xva), model.raw_output(Xva))
    # a float contamination moves the anomaly cut, not the ranking
    c = train_model(
        "isolation_forest",
        {"n_estimators": 20, "contamination": 0.03},
        Xtr,
        None,
        None,
        None,
        names,
    )
    assert roc_auc_score(yva, c.predict_scores(Xva)) > 0.5


@pytest.mark.parametrize(
    "algorithm", ["xgboost", "lightgbm", "neural_net", "isolation_forest"]
)
def test_should_stop_cancels_promptly(
    algorithm: str, data: tuple[np.ndarray, ...]
) -> None:
    Xtr, ytr, Xva, yva = data
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > 2

    params = {**FAST[algorithm], ALGO_ITER[algorithm]: 500}
    with pytest.raises(TrainingCancelled):
        train_model(algorithm, params, Xtr, ytr, Xva, yva, NAMES, should_stop=stop)
    assert calls[0] == 3  # the first True ended training: not one more round ran


ALGO_ITER = {
    "xgboost": "n_estimators",
    "lightgbm": "n_estimators",
    "neural_net": "max_iter",
    "isolation_forest": "n_estimators",
}


@pytest.mark.parametrize(
    ("y", "field"),
    [
        (np.zeros(100), "target_column"),
        (np.r_[np.zeros(98), 1, 2], "target_column"),
        (np.r_[np.zeros(99), np.nan], "target_column"),
        (np.zeros(99), "target_column"),
    ],
)
def test_bad_target_is_rejected(y: np.ndarray, field: str) -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    with pytest.raises(TrainingDataError) as info:
        train_model("xgboost", {}, X, y, None, None, ["a", "b", "c"])
    assert info.value.field == field


def test_bad_features_are_rejected() -> None:
    X = np.random.default_rng(0).normal(size=(100, 3))
    y = np.r_[np.zeros(90), np.ones(10)]
    X[5, 1] = np.inf
    with pytest.raises(TrainingDataError) as info:
        check_training_data(X, y, True)
    assert info.value.field == "features"
    X[5, 1] = np.nan
    check_training_data(X, y, True, allow_nan=True)  # boosters take NaN as missing
    with pytest.raises(TrainingDataError):
        train_model("neural_net", {}, X, y, None, None, ["a", "b", "c"])
    with pytest.raises(TrainingDataError):
        train_model("xgboost", {}, X, y, None, None, ["a", "b"])
    check_training_data(X[:, :1] * 0, None, False)  # unsupervised needs no target
