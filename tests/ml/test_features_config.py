"""Feature configuration, column mapping and bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    FeatureConfig,
    FeatureInputError,
    apply_column_mapping,
    compute_features,
    feature_specs,
    select_features,
)
from ml.features.config import parse_duration


def _good(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(n)],
            "user_id": ["u1", "u2"] * (n // 2),
            "amount": np.linspace(1.0, 9.0, n),
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        }
    )


def _error(df: pd.DataFrame, config: FeatureConfig | None = None) -> FeatureInputError:
    with pytest.raises(FeatureInputError) as info:
        compute_features(df, config)
    return info.value


def test_config_round_trips_and_parses_durations() -> None:
    config = FeatureConfig(groups=["temporal", "transaction"], windows=["15m", "2w"])
    assert config.groups == ("transaction", "temporal")  # canonical order
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert config.window_ns == (("15m", 900 * 10**9), ("2w", 14 * 86_400 * 10**9))
    assert FeatureConfig().label_delay_ns == 7 * 86_400 * 10**9


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"groups": ["transaction", "fancy"]}, "groups"),
        ({"groups": []}, "groups"),
        ({"groups": "temporal"}, "groups"),
        ({"windows": ["1h", "1h"]}, "windows"),
        ({"windows": ["5x"]}, "windows"),
        ({"windows": ["0h"]}, "windows"),
        ({"fraud_rate_windows": ["-1d"]}, "fraud_rate_windows"),
        ({"label_delay": "soon"}, "label_delay"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(FeatureInputError) as info:
        FeatureConfig(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(FeatureInputError, match="unknown feature config key"):
        FeatureConfig.from_dict({"windows": ["1h"], "colour": "red"})


def test_parse_duration() -> None:
    assert parse_duration("30s") == 30 * 10**9
    with pytest.raises(FeatureInputError):
        parse_duration("1.5h")


@pytest.mark.parametrize("role", ["user_id", "amount", "timestamp"])
def test_missing_required_column(role: str) -> None:
    error = _error(_good().drop(columns=[role]))
    assert error.field == role
    assert role in str(error)


@pytest.mark.parametrize(
    ("column", "values", "field", "text"),
    [
        (
            "timestamp",
            ["2026-01-01", "yesterday-ish", "2026-01-02", "x"],
            "timestamp",
            "unparseable",
        ),
        (
            "timestamp",
            ["2026-01-01", None, "2026-01-02", "2026-01-03"],
            "timestamp",
            "missing",
        ),
        ("timestamp", [1, 2, 3, 4], "timestamp", "not numbers"),
        ("amount", [1.0, float("nan"), 2.0, 3.0], "amount", "missing"),
        ("amount", [1.0, -5.0, 2.0, 3.0], "amount", "negative"),
        ("amount", ["1", "two", "3", "4"], "amount", "non-numeric"),
        ("amount", [1.0, float("inf"), 2.0, 3.0], "amount", "infinite"),
        ("user_id", ["u", None, "u", "v"], "user_id", "missing"),
        ("is_fraud", [0, 1, 2, 0], "is_fraud", "0/1"),
        ("is_fraud", [0, "yes", 1, 0], "is_fraud", "0/1"),
    ],
)
def test_bad_values_raise_clear_errors(
    column: str, values: list[object], field: str, text: str
) -> None:
    df = _good()
    df[column] = pd.Series(values, dtype="object")
    error = _error(df)
    assert error.field == field
    assert text in str(error)


def test_unlabelled_rows_and_naive_timestamps_are_accepted() -> None:
    df = _good()
    df["is_fraud"] = [1, None, 0, None]
    naive = df.assign(timestamp=df["timestamp"].dt.tz_localize(None))
    strings = df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    a = compute_features(df).frame
    pd.testing.assert_frame_equal(a, compute_features(naive).frame)
    pd.testing.assert_frame_equal(a, compute_features(strings).frame)


def test_missing_optional_columns_drop_their_features() -> None:
    result = compute_features(_good())
    dropped = {d["feature"]: d["reason"] for d in result.dropped}
    assert dropped["is_new_device"] == "column 'device_id' not mapped"
    assert dropped["device_txn_count_1h"] == "column 'device_id' not mapped"
    assert dropped["merchant_fraud_rate_7d"] == "column 'merchant_id' not mapped"
    assert "user_txn_count_1h" in result.feature_names
    assert not set(dropped) & set(result.frame.columns)
    with_merchant = _good().assign(merchant_id="m")
    dropped = {
        d["feature"]: d["reason"] for d in compute_features(with_merchant).dropped
    }
    assert dropped["merchant_fraud_rate_7d"] == "column 'is_fraud' not mapped"
    assert "merchant_txn_count_1h" not in dropped


def test_column_mapping_renames_source_columns() -> None:
    source = _good().rename(columns={"user_id": "customer", "amount": "value"})
    source["dev"] = "d1"
    mapping = {"user_id": "customer", "amount": "value", "device_id": "dev"}
    mapped = apply_column_mapping(source, mapping)
    assert set(mapped.columns) == {
        "transaction_id",
        "user_id",
        "amount",
        "timestamp",
        "device_id",
    }
    result = compute_features(source, column_mapping=mapping)
    assert "device_txn_count_1h" in result.feature_names
    with pytest.raises(FeatureInputError) as info:
        apply_column_mapping(source, {"device_id": "nope"})
    assert info.value.field == "device_id"
    with pytest.raises(FeatureInputError) as info:
        apply_column_mapping(source, {"shoe_size": "value"})
    assert info.value.field == "shoe_size"


# A feature set's configuration as stored before user fraud rates and window ratios.
STORED_BEFORE = {
    "groups": ["transaction", "behavioral", "temporal", "aggregation"],
    "windows": ["1h", "24h", "7d", "30d"],
    "label_delay": "7d",
    "fraud_rate_windows": ["7d", "30d"],
    "distinct_windows": ["7d", "30d"],
}


def test_a_stored_config_without_the_added_keys_keeps_its_features() -> None:
    config = FeatureConfig.from_dict(STORED_BEFORE)
    assert config.user_fraud_rate_windows == ()
    assert config.amount_ratio_windows == ()
    assert config.to_dict() == STORED_BEFORE  # same form, so same online namespace
    names = [spec.name for spec in feature_specs(config)]
    assert len(names) == 53
    assert not any(n.startswith(("user_fraud", "user_amount_mean")) for n in names)


def test_a_request_takes_every_default_and_a_new_config_round_trips() -> None:
    assert FeatureConfig.from_request({}) == FeatureConfig()
    asked = FeatureConfig.from_request({"amount_ratio_windows": []})
    assert asked.amount_ratio_windows == ()
    assert asked.user_fraud_rate_windows == ("1d", "7d", "30d")
    for config in (FeatureConfig(), asked):
        assert FeatureConfig.from_dict(config.to_dict()) == config
    assert len(feature_specs(FeatureConfig())) == 67
    with pytest.raises(FeatureInputError) as info:
        FeatureConfig.from_request({"user_fraud_rate_windows": ["1x"]})
    assert info.value.field == "user_fraud_rate_windows"


def test_card_data_keeps_merchant_and_user_risk_and_velocity() -> None:
    """Card data (no device, location, category or payment method) keeps 51 of 67."""
    kept, dropped = select_features(
        FeatureConfig(),
        ("transaction_id", "user_id", "merchant_id", "amount", "timestamp", "is_fraud"),
    )
    names = {spec.name for spec in kept}
    assert (len(kept), len(dropped)) == (51, 16)
    for window in ("1d", "7d", "30d"):
        assert {f"merchant_fraud_rate_{window}", f"user_fraud_rate_{window}"} <= names
    for window in ("24h", "7d", "30d"):
        assert {
            f"user_txn_count_{window}",
            f"user_amount_sum_{window}",
            f"amount_to_user_mean_{window}",
            f"merchant_txn_count_{window}",
        } <= names
