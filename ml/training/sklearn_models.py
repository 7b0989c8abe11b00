"""Isolation Forest and MLP fitters (scikit-learn), trained in slices for progress/cancel.

Isolation Forest grows its trees in chunks via ``warm_start``; it ignores labels. Its fraud
score is ``logistic((-decision_function - 0) / s)`` with s the std of the training
anomaly margin: 0.5 sits at the forest's own anomaly cut (``offset_``), higher is more
anomalous. The MLP (StandardScaler + MLPClassifier) trains one epoch at a time with
``partial_fit`` over row chunks; with ``class_weight="balanced"`` each epoch oversamples
positives (with replacement) up to the negative count, which shifts its probabilities
upwards but not its ranking (the threshold is chosen on validation data anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.training.model import TrainedModel, TrainingProgress
from ml.training.progress import ProgressReporter, subsample

IF_CHUNK_TREES = 10
MLP_CHUNK_ROWS = 65_536


def fit_isolation_forest(
    params: dict[str, Any],
    X_train: npt.NDArray[Any],
    y_train: npt.NDArray[Any] | None,
    X_val: npt.NDArray[Any] | None,
    y_val: npt.NDArray[Any] | None,
    feature_names: list[str],
    on_progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    seed: int,
    n_jobs: int,
    *,
    sample_weight: npt.NDArray[Any] | None = None,
) -> TrainedModel:
    from sklearn.ensemble import IsolationForest

    X = np.ascontiguousarray(X_train, dtype=np.float32)  # sklearn trees work in float32
    total = int(params["n_estimators"])
    forest = IsolationForest(
        n_estimators=0,
        max_samples=min(int(params["max_samples"]), X.shape[0]),
        max_features=float(params["max_features"]),
        bootstrap=bool(params["bootstrap"]),
        contamination="auto",
        warm_start=True,
        n_jobs=n_jobs,
        random_state=seed,
    )

    def score(rows: npt.NDArray[Any], iteration: int) -> npt.NDArray[Any]:
        return -np.asarray(forest.score_samples(rows))

    reporter = ProgressReporter(
        total,
        score,
        None,  # no training loss for an unsupervised model
        subsample(X_val, y_val, seed + 1),
        on_progress,
        should_stop,
        with_loss=False,
    )
    done = 0
    while done < total:
        reporter.check_stop()
        done = min(done + IF_CHUNK_TREES, total)
        forest.set_params(n_estimators=done)
        forest.fit(X, sample_weight=sample_weight)
        reporter.step(done)
    contamination = params["contamination"]
    sample = X[np.random.default_rng(seed).permutation(X.shape[0])[:100_000]]
    if contamination != "auto":  # sklearn's rule, once (not per chunk), on <= 100k rows
        forest.set_params(contamination=float(contamination))
        forest.offset_ = float(
            np.percentile(forest.score_samples(sample), 100.0 * contamination)
        )
    margin = -np.asarray(forest.decision_function(sample), dtype=np.float64)
    scale = float(np.std(margin)) or 1.0
    transform = {
        "kind": "logistic",
        "output": 1,
        "column": 0,
        "sign": -1.0,
        "center": 0.0,
        "scale": scale,
    }
    return TrainedModel(
        "isolation_forest", dict(params), list(feature_names), forest, transform
    )


def fit_neural_net(
    params: dict[str, Any],
    X_train: npt.NDArray[Any],
    y_train: npt.NDArray[Any] | None,
    X_val: npt.NDArray[Any] | None,
    y_val: npt.NDArray[Any] | None,
    feature_names: list[str],
    on_progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    seed: int,
    n_jobs: int,
    *,
    sample_weight: npt.NDArray[Any] | None = None,
) -> TrainedModel:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    assert y_train is not None, "checked by train_model"
    epochs = int(params["max_iter"])
    hidden = tuple(int(v) for v in str(params["hidden_layer_sizes"]).split(","))
    scaler = StandardScaler().fit(X_train, sample_weight=sample_weight)
    weight = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    Xs = np.asarray(scaler.transform(X_train), dtype=np.float32)
    y = np.asarray(y_train).astype(np.int64)
    mlp = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation=params["activation"],
        alpha=float(params["alpha"]),
        batch_size=int(params["batch_size"]),
        learning_rate_init=float(params["learning_rate_init"]),
        random_state=seed,
    )
    pipeline = Pipeline([("scaler", scaler), ("mlp", mlp)])

    def score(rows: npt.NDArray[Any], iteration: int) -> npt.NDArray[Any]:
        return np.asarray(pipeline.predict_proba(rows))[:, 1]

    reporter = ProgressReporter(
        epochs,
        score,
        subsample(X_train, y_train, seed),
        subsample(X_val, y_val, seed + 1),
        on_progress,
        should_stop,
    )
    rng = np.random.default_rng(seed)
    pos = np.flatnonzero(y == 1)
    extra = (
        max(int(y.size - 2 * pos.size), 0)
        if params["class_weight"] == "balanced"
        else 0
    )
    classes = np.array([0, 1])
    for epoch in range(epochs):
        order = np.arange(y.size)
        if extra and pos.size:
            order = np.concatenate([order, rng.choice(pos, extra, replace=True)])
        rng.shuffle(order)
        for start in range(0, order.size, MLP_CHUNK_ROWS):
            reporter.check_stop()
            chunk = order[start : start + MLP_CHUNK_ROWS]
            mlp.partial_fit(
                Xs[chunk],
                y[chunk],
                sample_weight=None if weight is None else weight[chunk],
                classes=classes,
            )
        reporter.step(epoch + 1)
    return TrainedModel(
        "neural_net",
        dict(params),
        list(feature_names),
        pipeline,
        {"kind": "probability", "output": 1, "column": 1},
    )
