"""SHAP explanations rebuilt from stored model bytes, top features and their reasons."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from ml.explain import (
    ALGORITHMS,
    Explanation,
    ModelExplainer,
    generic_reason,
    load_explainer,
    reason,
    top_features,
)
from ml.explain.shap_values import average_path_length
from ml.features import FeatureConfig, compute_features, feature_specs
from ml.features.behavioral_features import NO_PREVIOUS_SECONDS
from ml.training import TrainedModel, train_model

PARAMS: dict[str, dict[str, Any]] = {
    "xgboost": {"n_estimators": 30, "max_depth": 4},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
    "isolation_forest": {"n_estimators": 40},
    "neural_net": {"max_iter": 5, "hidden_layer_sizes": "32,16"},
}
BOOSTERS = ("xgboost", "lightgbm")
N_TRAIN = 3000
# Kernel SHAP costs ~25 ms a row for the MLP: explain only a few of its rows.
ROWS = {"xgboost": 400, "lightgbm": 400, "isolation_forest": 400, "neural_net": 4}

Data = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], list[str]]


@pytest.fixture(scope="module")
def data() -> Data:
    """Generated transactions through the real feature pipeline: all 67 features."""
    config = GeneratorConfig(
        n_rows=4000,
        n_users=300,
        n_merchants=40,
        days=20,
        target_fraud_rate=0.05,
        seed=7,
    )
    df = generate_transactions(config)
    result = compute_features(df)
    names = result.feature_names
    X = np.ascontiguousarray(result.frame[names].to_numpy(np.float32))
    y = df["is_fraud"].to_numpy(np.int64)
    return X, y, names


@pytest.fixture(scope="module")
def models(
    data: Data, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[TrainedModel, bytes]]:
    """Each algorithm trained once, with the `model.native` bytes the service stores."""
    X, y, names = data
    out: dict[str, tuple[TrainedModel, bytes]] = {}
    folder = tmp_path_factory.mktemp("native")
    for algorithm, params in PARAMS.items():
        model = train_model(
            algorithm, params, X[:N_TRAIN], y[:N_TRAIN], None, None, names
        )
        path = folder / f"{algorithm}-model.native"
        model.save_native(path)
        out[algorithm] = (model, path.read_bytes())
    return out


def _explainer(
    models: dict[str, tuple[TrainedModel, bytes]], algorithm: str
) -> tuple[TrainedModel, ModelExplainer]:
    model, native = models[algorithm]
    return model, load_explainer(
        algorithm, native, model.feature_names, model.score_transform
    )


def _test_rows(data: Data, algorithm: str) -> npt.NDArray[np.float32]:
    X, y, _ = data
    held_out = X[N_TRAIN:]
    # fraud rows first so the few MLP rows include some
    order = np.argsort(-y[N_TRAIN:], kind="stable")
    return np.ascontiguousarray(held_out[order[: ROWS[algorithm]]])


def _additivity_tol(algorithm: str) -> float:
    return 1e-4 if algorithm in BOOSTERS else 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_explain_reproduces_raw_output_and_fraud_score(
    algorithm: str, data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, algorithm)
    rows = _test_rows(data, algorithm)
    explanation = explainer.explain(rows)

    n, f = rows.shape
    assert isinstance(explanation, Explanation)
    assert explanation.contributions.shape == (n, f) and explanation.raw.shape == (n,)
    assert explanation.contributions.dtype == np.float64
    assert explanation.raw.dtype == np.float64
    assert isinstance(explanation.base_value, float)
    expected_unit = "neg_path_length" if algorithm == "isolation_forest" else "log_odds"
    assert explanation.output == explainer.output == expected_unit
    rebuilt = explanation.base_value + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(
        rebuilt, explanation.raw, rtol=0, atol=_additivity_tol(algorithm)
    )
    assert np.abs(explanation.contributions).sum() > 0

    scores = model.predict_scores(rows)
    tol = 1e-5 if algorithm == "neural_net" else 1e-6  # the MLP ran in float32
    np.testing.assert_allclose(
        explainer.fraud_score(explanation.raw), scores, rtol=0, atol=tol
    )
    if algorithm in BOOSTERS or algorithm == "neural_net":
        sigmoid = 1.0 / (1.0 + np.exp(-explanation.raw))
        np.testing.assert_allclose(sigmoid, scores, rtol=0, atol=tol)


@pytest.mark.slow
def test_booster_raw_is_the_native_margin(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    import xgboost as xgb

    rows = _test_rows(data, "xgboost")
    model, explainer = _explainer(models, "xgboost")
    margin = model.model.predict(xgb.DMatrix(rows), output_margin=True)
    np.testing.assert_allclose(explainer.explain(rows).raw, margin, atol=1e-6)
    model, explainer = _explainer(models, "lightgbm")
    margin = model.model.predict(rows, raw_score=True)
    np.testing.assert_allclose(explainer.explain(rows).raw, margin, atol=1e-9)


@pytest.mark.slow
def test_isolation_forest_unit_is_negated_mean_path_length(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, "isolation_forest")
    rows = _test_rows(data, "isolation_forest")
    explanation = explainer.explain(rows)
    forest = model.model
    depth = -explanation.raw  # mean isolation depth, what shap's TreeExplainer explains
    c = average_path_length(int(forest.max_samples_))
    np.testing.assert_allclose(-np.exp2(-depth / c), forest.score_samples(rows))
    assert (depth > 0).all() and explanation.base_value < 0
    # the most anomalous rows (highest fraud score) isolate soonest: largest raw
    scores = model.predict_scores(rows)
    assert np.argmax(scores) == np.argmax(explanation.raw)


@pytest.mark.slow
def test_xgboost_json_blob_loads_too(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]], tmp_path: Path
) -> None:
    model, native = models["xgboost"]
    assert native[:1] == b"{" and not native.startswith(b'{"')  # UBJSON for .native
    model.save_native(tmp_path / "model.json")
    explainer = load_explainer(
        "xgboost",
        (tmp_path / "model.json").read_bytes(),
        model.feature_names,
        model.score_transform,
    )
    rows = _test_rows(data, "xgboost")
    np.testing.assert_allclose(
        explainer.fraud_score(explainer.explain(rows).raw),
        model.predict_scores(rows),
        atol=1e-6,
    )


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_nan_rows_are_explained(
    algorithm: str, data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, algorithm)
    rows = _test_rows(data, algorithm)[:4].copy()
    names = model.feature_names
    missing = [names.index("seconds_since_last_txn"), names.index("amount_zscore_user")]
    rows[0, missing] = np.nan
    rows[1, :] = np.nan
    rows[2, ::3] = np.nan
    explanation = explainer.explain(rows)
    assert np.isfinite(explanation.contributions).all()
    assert np.isfinite(explanation.raw).all()
    rebuilt = explanation.base_value + explanation.contributions.sum(axis=1)
    np.testing.assert_allclose(
        rebuilt, explanation.raw, rtol=0, atol=_additivity_tol(algorithm)
    )
    if algorithm == "neural_net":
        # no notion of missing: NaN takes the training mean and contributes nothing
        assert (explanation.contributions[np.isnan(rows)] == 0.0).all()
        mean = model.model[0].mean_
        imputed = np.where(np.isnan(rows), mean, rows).astype(np.float32)
        np.testing.assert_allclose(
            explainer.fraud_score(explanation.raw),
            model.predict_scores(imputed),
            atol=1e-5,
        )
        np.testing.assert_allclose(explanation.raw[1], explanation.base_value)
    else:
        # trees route NaN as the native model does
        np.testing.assert_allclose(
            explainer.fraud_score(explanation.raw),
            model.predict_scores(rows),
            atol=1e-6,
        )


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_single_row_by_name_matches_matrix(
    algorithm: str, data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, algorithm)
    row = _test_rows(data, algorithm)[0]
    features: dict[str, float | None] = dict(
        zip(model.feature_names, row.tolist(), strict=True)
    )
    features["hour"] = None  # missing by name -> NaN
    features["not_a_feature"] = 1.0  # ignored
    by_name = explainer.explain_features(features)
    matrix = row.copy()
    matrix[model.feature_names.index("hour")] = np.nan
    by_row = explainer.explain(matrix)  # 1-D: one row
    assert by_name.contributions.shape == (1, len(model.feature_names))
    np.testing.assert_allclose(by_name.contributions, by_row.contributions)
    np.testing.assert_allclose(by_name.raw, by_row.raw)


@pytest.mark.slow
def test_neural_net_explanations_repeat_and_leave_global_rng_alone(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    _, explainer = _explainer(models, "neural_net")
    rows = _test_rows(data, "neural_net")[:2]
    np.random.seed(123)
    expected_next = np.random.random()
    np.random.seed(123)
    first = explainer.explain(rows)
    assert np.random.random() == expected_next
    np.testing.assert_array_equal(
        first.contributions, explainer.explain(rows).contributions
    )


@pytest.mark.slow
def test_bad_input_is_rejected(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, "xgboost")
    rows = _test_rows(data, "xgboost")
    with pytest.raises(ValueError, match="expected shape"):
        explainer.explain(rows[:, :10])
    with pytest.raises(ValueError, match="numeric"):
        explainer.explain(np.array([["a"] * rows.shape[1]]))
    empty = explainer.explain(rows[:0])
    assert empty.contributions.shape == (0, rows.shape[1]) and empty.raw.shape == (0,)
    _, native = models["xgboost"]
    with pytest.raises(ValueError, match="unknown algorithm"):
        load_explainer("svm", native, model.feature_names, model.score_transform)
    with pytest.raises(ValueError, match="features"):
        load_explainer("xgboost", native, model.feature_names[:5], {})
    _, forest_blob = models["isolation_forest"]
    with pytest.raises(ValueError, match="IsolationForest, not Pipeline"):
        load_explainer("neural_net", forest_blob, model.feature_names, {})


# ------------------------------------------------------------------ top_features


@pytest.mark.slow
def test_top_features_orders_by_magnitude_and_is_json_ready(
    data: Data, models: dict[str, tuple[TrainedModel, bytes]]
) -> None:
    model, explainer = _explainer(models, "lightgbm")
    rows = _test_rows(data, "lightgbm")[:1].copy()
    names = model.feature_names
    explanation = explainer.explain(rows)
    top = top_features(names, rows[0], explanation.contributions[0], k=5)
    assert len(top) == 5
    magnitudes = [abs(item["contribution"]) for item in top]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert magnitudes[0] == np.abs(explanation.contributions[0]).max()
    for item in top:
        assert set(item) == {"feature", "contribution", "value", "reason"}
        assert type(item["feature"]) is str and type(item["reason"]) is str
        assert type(item["contribution"]) is float and type(item["value"]) is float
        i = names.index(item["feature"])
        assert item["contribution"] == explanation.contributions[0, i]
        assert item["value"] == pytest.approx(float(rows[0, i]), rel=1e-6)
        assert item["reason"] and item["reason"] != generic_reason(
            item["feature"], item["value"]
        )
    json.dumps(top, allow_nan=False)
    assert [
        t["feature"]
        for t in top_features(names, rows[0], explanation.contributions[0], k=2)
    ] == [t["feature"] for t in top[:2]]


def test_top_features_edge_cases() -> None:
    names = ["amount", "hour", "is_new_device", "user_txn_count_24h"]
    values = np.array([89.83, np.nan, 1.0, 12.0], dtype=np.float32)
    contributions = np.array([0.25, -0.5, 0.25, 0.0])
    top = top_features(names, values, contributions, k=10)
    # |contribution| descending, ties in feature order, zero contributions left out
    assert [t["feature"] for t in top] == ["hour", "amount", "is_new_device"]
    assert top[0]["value"] is None and "missing" in top[0]["reason"]
    assert top[1]["value"] == 89.83  # float32 shown at its shortest repr
    json.dumps(top, allow_nan=False)
    assert top_features(names, values, contributions, k=0) == []
    assert len(top_features(names, values.tolist(), contributions.tolist(), k=1)) == 1
    with pytest.raises(ValueError, match="k must be"):
        top_features(names, values, contributions, k=-1)
    with pytest.raises(ValueError, match="4 feature names"):
        top_features(names, values[:3], contributions, k=2)


# ----------------------------------------------------------------------- reasons


def _typical(name: str) -> float:
    if name.startswith(("is_", "has_")):
        return 1.0
    if "fraud_rate" in name:
        return 0.08
    if name in ("hour_sin", "hour_cos"):
        return 0.5
    return 3.0


@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(),
        FeatureConfig(
            windows=("30m", "1h", "2w"),
            fraud_rate_windows=("1d", "90d"),
            distinct_windows=("1h",),
        ),
    ],
    ids=["default", "other-windows"],
)
def test_every_registry_feature_has_a_specific_reason(config: FeatureConfig) -> None:
    specs = feature_specs(config)
    if config == FeatureConfig():
        assert len(specs) == 67
    for spec in specs:
        for value in (_typical(spec.name), 0.0, None):
            text = reason(spec.name, value, 0.0, {})
            assert text and text != generic_reason(spec.name, value), spec.name
            assert "_" not in text, (spec.name, text)  # no raw snake_case names
        assert reason(spec.name, 1.0, 0.4, {}).endswith("(raises risk)")
        assert reason(spec.name, 1.0, -0.4, {}).endswith("(lowers risk)")
    assert reason("unknown_feature", 2.5, 0.0, {}) == generic_reason(
        "unknown_feature", 2.5
    )


def test_reason_sentences() -> None:
    assert (
        reason("amount_zscore_user", 3.2, 0.0, {"user_txn_count": 10})
        == "amount is 3.2 standard deviations above this user's average"
    )
    assert "below" in reason("amount_zscore_user", -1.5, 0.0, {})
    assert "too little history" in reason(
        "amount_zscore_user", 0.0, 0.0, {"user_txn_count": 1}
    )
    assert (
        reason("is_new_device", 1.0, 0.0, {})
        == "first time this user pays from this device"
    )
    assert reason("is_new_device", 0.0, 0.0, {}) == "not a new device for this user"
    assert (
        reason("user_txn_count_24h", 12.0, 0.0, {})
        == "12 earlier transactions by this user in the last 24 h"
    )
    assert (
        reason("merchant_txn_count_1h", 1.0, 0.0, {})
        == "1 earlier transaction at this merchant in the last hour"
    )
    assert (
        reason("merchant_fraud_rate_30d", 0.08, 0.0, {})
        == "8.0% of this merchant's labelled transactions in the last 30 days were fraud"
    )
    assert "45 labelled" in reason(
        "merchant_fraud_rate_30d", 0.08, 0.0, {"merchant_labelled_count_30d": 45}
    )
    assert "no labelled transactions" in reason(
        "merchant_fraud_rate_7d", 0.0, 0.0, {"merchant_labelled_count_7d": 0}
    )
    assert (
        reason("user_fraud_rate_1d", 0.5, 0.0, {"user_labelled_count_1d": 4})
        == "50.0% of this user's 4 labelled transactions in the last day were fraud"
    )
    assert (
        reason("amount_to_user_mean_7d", 4.0, 0.0, {})
        == "amount is 4.00 times this user's average over the last 7 days"
    )
    assert "no spending" in reason(
        "amount_to_user_mean_24h", 1.0, 0.0, {"user_amount_mean_24h": 0.0}
    )
    assert (
        reason("seconds_since_last_txn", 130.0, 0.0, {})
        == "2 minutes after this user's previous transaction"
    )
    assert reason("seconds_since_last_txn", 3 * 86400.0, 0.0, {}).startswith("3 days")
    assert "no previous" in reason(
        "seconds_since_last_txn", NO_PREVIOUS_SECONDS, 0.0, {}
    )
    assert reason("hour", 3.0, 0.0, {}) == "at 03:00 UTC, a night hour"
    assert reason("hour", 15.0, 0.0, {}) == "at 15:00 UTC"
    angle = 2 * math.pi * 3 / 24
    row = {"hour_sin": math.sin(angle), "hour_cos": math.cos(angle)}
    assert "03:00 UTC" in reason("hour_cos", row["hour_cos"], 0.0, row)
    assert reason("day_of_week", 5.0, 0.0, {}) == "on a Saturday, a weekend day"
    assert "Sunday" in reason("is_weekend", 1.0, 0.0, {"day_of_week": 6.0})
    assert reason("amount", 5000.0, 0.0, {}) == "amount of 5,000.00"
    assert "5,000.00" in reason("log_amount", math.log1p(5000.0), 0.0, {})
    assert (
        reason("user_distinct_countries_7d", 3.0, 0.0, {})
        == "this user used 3 different countries in the last 7 days"
    )
    assert reason("user_amount_sum_7d", 1234.5, 0.0, {}) == (
        "this user's earlier transactions in the last 7 days total 1,234.50"
    )
    assert reason("amount", None, 0.0, {}) == "the amount is missing"
    assert (
        reason("amount", float("nan"), 1.0, {}) == "the amount is missing (raises risk)"
    )


def test_module_import_is_cheap() -> None:
    from tests.support.fresh_process import loaded_after

    heavy = ("xgboost", "lightgbm", "shap", "sklearn", "pandas")
    assert loaded_after("import ml.explain", heavy) == []
