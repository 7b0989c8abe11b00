"""Sample weights reach every algorithm's fit: uniform weights change nothing, skewed
ones change the model, bad ones are refused naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ml.training.trainer import TrainingDataError, train_model

SMALL = {
    "xgboost": {"n_estimators": 20, "max_depth": 3},
    "lightgbm": {"n_estimators": 20, "num_leaves": 7},
    "isolation_forest": {"n_estimators": 20},
    "neural_net": {"max_iter": 3, "hidden_layer_sizes": "16"},
}


@pytest.fixture(scope="module")
def data() -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=2000) > 1.2).astype(np.float64)
    return X, y


def _scores(
    algorithm: str,
    data: tuple[npt.NDArray[Any], npt.NDArray[Any]],
    weight: npt.NDArray[Any] | None,
) -> npt.NDArray[Any]:
    X, y = data
    model = train_model(
        algorithm,
        SMALL[algorithm],
        X,
        y,
        None,
        None,
        ["a", "b", "c", "d"],
        n_jobs=1,
        sample_weight=weight,
    )
    return np.asarray(model.predict_scores(X[:200]))


@pytest.mark.parametrize("algorithm", list(SMALL))
def test_skewed_weights_change_the_model(
    algorithm: str, data: tuple[npt.NDArray[Any], npt.NDArray[Any]]
) -> None:
    plain = _scores(algorithm, data, None)
    skewed = np.where(data[0][:, 1] > 0, 10.0, 0.1)
    assert not np.allclose(plain, _scores(algorithm, data, skewed))


@pytest.mark.parametrize("algorithm", ["xgboost", "lightgbm"])
def test_uniform_weights_are_no_weights(
    algorithm: str, data: tuple[npt.NDArray[Any], npt.NDArray[Any]]
) -> None:
    plain = _scores(algorithm, data, None)
    np.testing.assert_allclose(plain, _scores(algorithm, data, np.ones(2000)))


@pytest.mark.parametrize(
    "weight",
    [np.ones(5), -np.ones(2000), np.zeros(2000), np.full(2000, np.nan)],
    ids=["length", "negative", "all-zero", "nan"],
)
def test_bad_weights_are_refused(
    weight: npt.NDArray[Any], data: tuple[npt.NDArray[Any], npt.NDArray[Any]]
) -> None:
    with pytest.raises(TrainingDataError) as exc:
        _scores("xgboost", data, weight)
    assert exc.value.field == "sample_weight"
