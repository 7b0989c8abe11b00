"""Batch features: hand-checked values, point-in-time rules and the prefix property."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.features import FeatureConfig, compute_features, feature_specs
from ml.features.behavioral_features import NO_PREVIOUS_SECONDS
from ml.features.config import GROUPS
from tests.ml.test_features_data import transactions

T0 = pd.Timestamp("2026-03-02 10:00", tz="UTC")  # a Monday


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["timestamp"] = [T0 + pd.Timedelta(v) for v in df["timestamp"]]
    default_ids = pd.Series([f"t{i}" for i in range(len(df))], dtype="object")
    df["transaction_id"] = df.get("transaction_id", default_ids).fillna(default_ids)
    return df


def _by_id(df: pd.DataFrame, config: FeatureConfig | None = None) -> pd.DataFrame:
    return compute_features(df, config).frame.set_index("transaction_id")


def test_user_history_excludes_ties_and_later_rows() -> None:
    df = _frame(
        [
            {"user_id": "u", "amount": 10.0, "timestamp": "0s", "device_id": "d1"},
            {"user_id": "u", "amount": 20.0, "timestamp": "0s", "device_id": "d2"},
            {"user_id": "u", "amount": 30.0, "timestamp": "30min", "device_id": "d2"},
            {"user_id": "u", "amount": 90.0, "timestamp": "80min", "device_id": "d1"},
            {"user_id": "v", "amount": 5.0, "timestamp": "80min", "device_id": "d1"},
            {"user_id": "w", "amount": 7.0, "timestamp": "2h", "device_id": "d1"},
        ]
    )
    f = _by_id(df)
    # the two tied first transactions see nothing, not even each other
    for tid in ("t0", "t1"):
        assert f.loc[tid, "user_txn_count"] == 0
        assert f.loc[tid, "user_txn_count_1h"] == 0
        assert f.loc[tid, "seconds_since_last_txn"] == NO_PREVIOUS_SECONDS
        assert f.loc[tid, "is_new_device"] == 1
    assert f.loc["t2", "user_txn_count"] == 2
    assert f.loc["t2", "user_txn_count_1h"] == 2
    assert f.loc["t2", "user_amount_sum_1h"] == pytest.approx(30.0)
    assert f.loc["t2", "seconds_since_last_txn"] == 1800.0
    assert f.loc["t2", "user_mean_amount"] == pytest.approx(15.0)
    assert f.loc["t2", "amount_to_user_mean"] == pytest.approx(2.0)
    past = np.array([10.0, 20.0])
    assert f.loc["t2", "amount_zscore_user"] == pytest.approx(
        (30.0 - past.mean()) / past.std(ddof=1)
    )
    assert f.loc["t2", "is_new_device"] == 0  # d2 was used at an earlier time
    assert f.loc["t2", "user_distinct_devices_7d"] == 2
    # 1h window at 80min is [20min, 80min): only the 30min transaction
    assert f.loc["t3", "user_txn_count_1h"] == 1
    assert f.loc["t3", "user_amount_sum_1h"] == pytest.approx(30.0)
    assert f.loc["t3", "user_txn_count_24h"] == 3
    assert f.loc["t3", "user_amount_sum_24h"] == pytest.approx(60.0)
    # aggregates are per entity; the device sees t0 but not its tie t3
    assert f.loc["t4", "user_txn_count_24h"] == 0
    assert f.loc["t4", "device_txn_count_24h"] == 1
    assert f.loc["t4", "device_amount_sum_24h"] == pytest.approx(10.0)
    assert f.loc["t5", "device_txn_count_24h"] == 3
    assert f.loc["t5", "device_amount_sum_24h"] == pytest.approx(105.0)


def test_window_lower_bound_is_inclusive() -> None:
    df = _frame(
        [
            {"user_id": "u", "amount": 1.0, "timestamp": "0s", "device_id": "a"},
            {"user_id": "u", "amount": 2.0, "timestamp": "1ns", "device_id": "b"},
            {"user_id": "u", "amount": 4.0, "timestamp": "1h", "device_id": "c"},
        ]
    )
    f = _by_id(df, FeatureConfig(windows=("1h",), distinct_windows=("1h",)))
    # the event exactly at t - 1h is inside, the one at t - 1h + 1ns too
    assert f.loc["t2", "user_txn_count_1h"] == 2
    assert f.loc["t2", "user_distinct_devices_1h"] == 2
    df.loc[0, "timestamp"] -= pd.Timedelta("1ns")
    f = _by_id(df, FeatureConfig(windows=("1h",), distinct_windows=("1h",)))
    assert f.loc["t2", "user_txn_count_1h"] == 1
    assert f.loc["t2", "user_distinct_devices_1h"] == 1


def test_distinct_devices_count_each_device_once() -> None:
    rows = [
        {"user_id": "u", "amount": 1.0, "timestamp": f"{h}h", "device_id": d}
        for h, d in [(0, "a"), (1, "a"), (2, "b"), (3, "a"), (4, None), (5, "c")]
    ]
    f = _by_id(_frame(rows), FeatureConfig(distinct_windows=("2h", "30d")))
    assert f["user_distinct_devices_30d"].tolist() == [0, 1, 1, 2, 2, 2]
    # 2h window at 5h covers [3h, 5h): device a (3h) and the missing device
    assert f["user_distinct_devices_2h"].tolist() == [0, 1, 1, 2, 2, 1]
    assert f["is_new_device"].tolist() == [1, 0, 1, 0, 0, 1]


def test_merchant_fraud_rate_uses_only_delayed_labels() -> None:
    day = pd.Timedelta("1D")
    rows = [
        {
            "user_id": "a",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": 1,
            "timestamp": "0s",
        },
        {
            "user_id": "b",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": 0,
            "timestamp": "1D",
        },
        {
            "user_id": "c",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": None,
            "timestamp": "2D",
        },
    ]
    probes = {
        "early": 7 * day - pd.Timedelta("1s"),
        "on_time": 7 * day,
        "both": 8 * day,
        "expired": 15 * day,
    }
    for name, at in probes.items():
        rows.append(
            {
                "user_id": "z",
                "merchant_id": "m",
                "amount": 1.0,
                "timestamp": str(at),
                "transaction_id": name,
            }
        )
    f = _by_id(_frame(rows), FeatureConfig(fraud_rate_windows=("7d",)))
    assert f.loc["early", "merchant_labelled_count_7d"] == 0
    assert f.loc["early", "merchant_fraud_rate_7d"] == 0.0
    assert f.loc["on_time", "merchant_labelled_count_7d"] == 1  # s + delay <= t
    assert f.loc["on_time", "merchant_fraud_rate_7d"] == 1.0
    assert f.loc["both", "merchant_labelled_count_7d"] == 2  # unlabelled ignored
    assert f.loc["both", "merchant_fraud_rate_7d"] == 0.5
    # window [t - delay - 7d, t - delay] = [day 1, day 8]: day 0 has left it
    assert f.loc["expired", "merchant_labelled_count_7d"] == 1
    assert f.loc["expired", "merchant_fraud_rate_7d"] == 0.0


def test_zero_label_delay_never_leaks_own_or_tied_labels() -> None:
    rows = [
        {
            "user_id": "a",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": 1,
            "timestamp": "0s",
        },
        {
            "user_id": "b",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": 0,
            "timestamp": "0s",
        },
        {
            "user_id": "c",
            "merchant_id": "m",
            "amount": 1.0,
            "is_fraud": 0,
            "timestamp": "1s",
        },
    ]
    f = _by_id(_frame(rows), FeatureConfig(label_delay="0s"))
    assert f["merchant_labelled_count_7d"].tolist() == [0, 0, 2]
    assert f["merchant_fraud_rate_7d"].tolist() == [0.0, 0.0, 0.5]


def test_temporal_and_amount_shape_features() -> None:
    rows = [
        {"user_id": "u", "amount": 50.0, "timestamp": "4D 17h30min"},  # Sat 03:30
        {"user_id": "u", "amount": 19.99, "timestamp": "1D 4h"},  # Tue 14:00
        {"user_id": "u", "amount": 0.07, "timestamp": "2D"},  # Wed 10:00
    ]
    f = _by_id(_frame(rows))
    assert f.loc["t0", ["hour", "day_of_week", "is_weekend", "is_night"]].tolist() == [
        3,
        5,
        1,
        1,
    ]
    assert f.loc["t1", ["hour", "day_of_week", "is_weekend", "is_night"]].tolist() == [
        14,
        1,
        0,
        0,
    ]
    assert f.loc["t0", "hour_sin"] == pytest.approx(math.sin(2 * math.pi * 3 / 24))
    assert f.loc["t0", "hour_cos"] == pytest.approx(math.cos(2 * math.pi * 3 / 24))
    assert f.loc["t0", ["is_round_amount", "amount_cents", "has_cents"]].tolist() == [
        1,
        0,
        0,
    ]
    assert f.loc["t1", ["is_round_amount", "amount_cents", "has_cents"]].tolist() == [
        0,
        99,
        1,
    ]
    assert f.loc["t2", "amount_cents"] == 7
    assert f.loc["t0", "log_amount"] == pytest.approx(math.log1p(50.0))


def test_constant_history_gives_zero_zscore() -> None:
    rows = [{"user_id": "u", "amount": 10.1, "timestamp": f"{h}h"} for h in range(5)]
    rows.append({"user_id": "u", "amount": 99.0, "timestamp": "6h"})
    f = _by_id(_frame(rows))
    assert f["amount_zscore_user"].tolist() == [0.0] * 6
    assert f.loc["t5", "amount_to_user_mean"] == pytest.approx(99.0 / 10.1)


def test_rows_keep_input_order_and_do_not_depend_on_it() -> None:
    df = transactions(3_000, 150, 20)
    shuffled = df.sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = compute_features(df).frame.set_index("transaction_id")
    b = compute_features(shuffled).frame
    assert b["transaction_id"].tolist() == shuffled["transaction_id"].tolist()
    pd.testing.assert_frame_equal(
        a.loc[b["transaction_id"]], b.set_index("transaction_id"), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_prefix_of_history_gives_the_same_rows(seed: int) -> None:
    df = transactions(6_000, 300, 25, seed=seed)
    full = compute_features(df).frame
    ts = df["timestamp"].to_numpy()
    inside_tie = np.flatnonzero(ts[1:] == ts[:-1]) + 1  # cut splits a tie group
    cuts = [1, 777, len(df) // 2, int(inside_tie[len(inside_tie) // 2]), len(df) - 1]
    assert df["timestamp"].iloc[cuts[3] - 1] == df["timestamp"].iloc[cuts[3]]
    for cut in cuts:
        part = compute_features(df.iloc[:cut]).frame
        pd.testing.assert_frame_equal(
            part, full.iloc[:cut], check_exact=False, rtol=0, atol=1e-9
        )


def test_output_matches_registry() -> None:
    df = transactions(2_000, 100, 10)
    result = compute_features(df)
    assert list(result.frame.columns) == ["transaction_id", *result.feature_names]
    assert result.dropped == []
    for spec in result.specs:
        assert str(result.frame[spec.name].dtype) == spec.dtype
        assert spec.group in GROUPS and spec.description
    values = result.frame[result.feature_names].to_numpy(dtype=float)
    assert np.isfinite(values).all()
    assert len(feature_specs()) == len({s.name for s in feature_specs()})


def test_groups_select_features() -> None:
    df = transactions(500, 50, 5)
    result = compute_features(df, FeatureConfig(groups=("temporal",)))
    assert {s.group for s in result.specs} == {"temporal"}
    assert result.feature_names == [
        "hour",
        "day_of_week",
        "is_weekend",
        "is_night",
        "hour_sin",
        "hour_cos",
    ]


def test_user_risk_and_window_means_match_a_brute_force() -> None:
    df = transactions(3_000, 60, 20, 40, seed=9)
    config = FeatureConfig()
    f = compute_features(df, config).frame
    ts = df["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    users = df["user_id"].to_numpy()
    amount = df["amount"].to_numpy(dtype=np.float64)
    label = df["is_fraud"].to_numpy(dtype=np.float64)
    delay = config.label_delay_ns
    rng = np.random.default_rng(1)
    for i in rng.choice(len(df), 300, replace=False):
        mine = users == users[i]
        for name, width in config.user_fraud_window_ns:
            seen = mine & (ts >= ts[i] - delay - width) & (ts <= ts[i] - delay)
            seen &= (ts < ts[i]) & ~np.isnan(label)
            n = int(seen.sum())
            rate = float(label[seen].sum()) / n if n else 0.0
            assert f.at[i, f"user_labelled_count_{name}"] == n
            assert f.at[i, f"user_fraud_rate_{name}"] == pytest.approx(rate)
        for name, width in config.ratio_window_ns:
            window = mine & (ts >= ts[i] - width) & (ts < ts[i])
            mean = float(amount[window].mean()) if window.any() else 0.0
            ratio = amount[i] / mean if mean > 0 else 1.0
            assert f.at[i, f"user_amount_mean_{name}"] == pytest.approx(mean)
            assert f.at[i, f"amount_to_user_mean_{name}"] == pytest.approx(ratio)
    assert f["user_labelled_count_30d"].max() > 0
    assert f["user_fraud_rate_30d"].max() > 0
