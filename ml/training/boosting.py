"""XGBoost and LightGBM fitters.

Imbalance: ``class_weight="balanced"`` sets ``scale_pos_weight = negatives / positives``
(``"auto"`` is decided by the caller, which fits both; here it means none).
Early stopping: with validation rows of both classes and ``early_stopping_rounds > 0``,
training stops once validation average precision (xgboost ``aucpr``, lightgbm
``average_precision``) has not improved for that many rounds, and the model is cut to
its best round.
Progress: a per-iteration callback feeds `ProgressReporter`, which polls `should_stop` every
round and evaluates metrics on subsamples only when due (see `progress`), so the library
path costs little over a bare ``xgboost.train``. Boosters are trained without feature
names (columns are f0..fN, as ONNX conversion needs); `TrainedModel.feature_names` maps
them back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.training.model import TrainedModel, TrainingProgress
from ml.training.progress import ProgressReporter, subsample

PROBABILITY = {"kind": "probability", "output": 1, "column": 1}


def _pos_weight(y: npt.NDArray[Any], params: dict[str, Any]) -> float:
    if params.get("class_weight", "none") != "balanced":
        return 1.0
    pos = float(np.sum(y == 1))
    return (float(y.size) - pos) / max(pos, 1.0)


def _patience(
    params: dict[str, Any], X_val: npt.NDArray[Any] | None, y_val: Any
) -> int:
    """Early-stopping rounds, 0 when off or when validation cannot rank (one class)."""
    rounds = int(params.get("early_stopping_rounds", 0))
    if X_val is None or y_val is None or rounds <= 0:
        return 0
    return rounds if np.unique(np.asarray(y_val)).size == 2 else 0


def fit_xgboost(
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
    import xgboost as xgb

    assert y_train is not None, "checked by train_model"
    rounds = int(params["n_estimators"])
    booster_params = {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "nthread": n_jobs,
        "seed": seed,
        "max_depth": params["max_depth"],
        "eta": params["learning_rate"],
        "subsample": params["subsample"],
        "colsample_bytree": params["colsample_bytree"],
        "min_child_weight": params["min_child_weight"],
        "gamma": params["gamma"],
        "lambda": params["reg_lambda"],
        "alpha": params["reg_alpha"],
        "max_bin": params["max_bin"],
        "scale_pos_weight": _pos_weight(y_train, params),
        "verbosity": 0,
    }
    # QuantileDMatrix bins straight from X, never holding a second full float copy.
    dtrain = xgb.QuantileDMatrix(
        X_train,
        label=y_train,
        weight=sample_weight,
        max_bin=params["max_bin"],
        nthread=n_jobs,
    )
    cache: dict[int, Any] = {}

    def score(X: npt.NDArray[Any], iteration: int) -> npt.NDArray[Any]:
        dm = cache.get(id(X))
        if dm is None:
            dm = cache[id(X)] = xgb.DMatrix(X, nthread=n_jobs)
        return np.asarray(booster_ref[0].predict(dm, iteration_range=(0, iteration)))

    booster_ref: list[Any] = [None]
    reporter = ProgressReporter(
        rounds,
        score,
        subsample(X_train, y_train, seed),
        subsample(X_val, y_val, seed + 1),
        on_progress,
        should_stop,
    )

    class _Callback(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            booster_ref[0] = model
            reporter.step(epoch + 1)
            return False

    patience = _patience(params, X_val, y_val)
    evals = []
    if patience:
        dval = xgb.QuantileDMatrix(X_val, label=y_val, ref=dtrain, nthread=n_jobs)
        evals = [(dval, "validation")]
    reporter.check_stop()
    booster = xgb.train(
        booster_params,
        dtrain,
        num_boost_round=rounds,
        evals=evals,
        early_stopping_rounds=patience or None,
        callbacks=[_Callback()],
        verbose_eval=False,
    )
    reporter.finish(booster.num_boosted_rounds())
    used = rounds
    if patience:
        used = int(booster.best_iteration) + 1
        booster = booster[:used]
    return TrainedModel(
        "xgboost",
        dict(params),
        list(feature_names),
        booster,
        dict(PROBABILITY),
        info={
            "scale_pos_weight": booster_params["scale_pos_weight"],
            "n_estimators_used": used,
        },
    )


def fit_lightgbm(
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
    import lightgbm as lgb

    assert y_train is not None, "checked by train_model"
    rounds = int(params["n_estimators"])
    lgb_params = {
        "objective": "binary",
        "metric": "average_precision",
        "verbosity": -1,
        "num_threads": n_jobs,
        "seed": seed,
        "num_leaves": params["num_leaves"],
        "max_depth": params["max_depth"],
        "learning_rate": params["learning_rate"],
        "bagging_fraction": params["subsample"],
        "bagging_freq": 1 if params["subsample"] < 1.0 else 0,
        "feature_fraction": params["colsample_bytree"],
        "min_child_samples": params["min_child_samples"],
        "lambda_l2": params["reg_lambda"],
        "lambda_l1": params["reg_alpha"],
        "scale_pos_weight": _pos_weight(y_train, params),
    }
    booster_ref: list[Any] = [None]

    def score(X: npt.NDArray[Any], iteration: int) -> npt.NDArray[Any]:
        return np.asarray(booster_ref[0].predict(X, num_iteration=iteration))

    reporter = ProgressReporter(
        rounds,
        score,
        subsample(X_train, y_train, seed),
        subsample(X_val, y_val, seed + 1),
        on_progress,
        should_stop,
    )

    ran = [0]

    def callback(env: Any) -> None:
        booster_ref[0] = env.model
        ran[0] = env.iteration + 1
        reporter.step(ran[0])

    reporter.check_stop()
    dataset = lgb.Dataset(
        X_train, label=y_train, weight=sample_weight, free_raw_data=True
    )
    patience = _patience(params, X_val, y_val)
    callbacks: list[Any] = [callback]
    valid: list[Any] = []
    if patience:
        valid = [lgb.Dataset(X_val, label=y_val, reference=dataset)]
        callbacks.append(lgb.early_stopping(patience, verbose=False))
    booster = lgb.train(
        lgb_params,
        dataset,
        num_boost_round=rounds,
        valid_sets=valid,
        callbacks=callbacks,
    )
    reporter.finish(ran[0])
    # lightgbm keeps the best round's trees only (early stopping without
    # keep_training_booster); cut here too in case it did not
    used = booster.current_iteration()
    if patience and 0 < booster.best_iteration < used:
        used = int(booster.best_iteration)
        booster = lgb.Booster(model_str=booster.model_to_string(num_iteration=used))
    return TrainedModel(
        "lightgbm",
        dict(params),
        list(feature_names),
        booster,
        dict(PROBABILITY),
        info={
            "scale_pos_weight": lgb_params["scale_pos_weight"],
            "n_estimators_used": used,
        },
    )
