"""Online features agree with batch: replay, late labels, backfill, serialisation."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    EntityKey,
    FeatureConfig,
    FeatureInputError,
    OnlineFeatureEngine,
    State,
    backfill_states,
    compute_features,
    state_from_json,
    state_to_json,
)
from ml.features.online import to_epoch_ns
from tests.ml.test_features_data import transactions

CONFIG = FeatureConfig()
TOLERANCE = 1e-6


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the scoring API would pass them: no label at scoring time."""
    records: list[dict[str, Any]] = df.drop(columns=["is_fraud"]).to_dict("records")
    return records


class Replay:
    """Scores rows one by one; every 10th write goes through JSON like the database."""

    def __init__(self, engine: OnlineFeatureEngine, states: dict[EntityKey, State]):
        self.engine, self.states, self.steps = engine, states, 0

    def step(self, txn: Mapping[str, Any]) -> list[float]:
        keys = self.engine.entity_keys(txn)
        features, updated = self.engine.process(
            txn, {k: self.states.get(k) for k in keys}
        )
        self.steps += 1
        for key, state in updated.items():
            if self.steps % 10 == 0:
                state = state_from_json(state_to_json(state))
            self.states[key] = state
        return list(features.values())

    def label(self, txn: Mapping[str, Any], label: int) -> None:
        """The label on each state that keeps labels, as the store delivers it."""
        for key in self.engine.entity_keys(txn):
            state = self.states.get(key)
            if key[0] in self.engine.labelled_entities and state is not None:
                self.states[key] = self.engine.apply_label(
                    state, txn["transaction_id"], label
                )


@pytest.fixture(scope="module")
def replayed() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[EntityKey, State]]:
    """22k rows replayed in time order; labels arrive at a random lag <= delay."""
    df = transactions(22_000, 800, 60, 60, seed=11)
    batch = compute_features(df, CONFIG)
    engine = OnlineFeatureEngine(CONFIG, available_roles=df.columns)
    assert engine.feature_names == batch.feature_names
    ts = df["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    rng = np.random.default_rng(5)
    arrival = ts + (rng.random(len(df)) * CONFIG.label_delay_ns).astype(np.int64)
    labels = df["is_fraud"].tolist()
    records = _records(df)
    pending: list[tuple[int, int]] = []
    replay = Replay(engine, {})
    online = np.empty((len(df), len(engine.feature_names)))
    for i, txn in enumerate(records):
        while pending and pending[0][0] <= ts[i]:
            _, j = heapq.heappop(pending)
            replay.label(records[j], int(labels[j]))
        online[i] = replay.step(txn)
        if not np.isnan(labels[i]):
            heapq.heappush(pending, (int(arrival[i]), i))
    for _, j in pending:  # deliver the rest so final states hold every label
        replay.label(records[j], int(labels[j]))
    expected = batch.frame[batch.feature_names].to_numpy(dtype=np.float64)
    return df, online, expected, replay.states


@pytest.mark.slow
def test_online_replay_equals_batch(
    replayed: tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[EntityKey, State]],
) -> None:
    df, online, expected, _ = replayed
    assert len(df) >= 20_000
    diff = np.abs(online - expected)
    worst = np.unravel_index(int(diff.argmax()), diff.shape)
    assert diff.max() <= TOLERANCE, (worst, online[worst], expected[worst])
    # the comparison is not vacuous: history, labels and ties all occur
    names = OnlineFeatureEngine(CONFIG).feature_names
    assert expected[:, names.index("merchant_labelled_count_30d")].max() > 50
    assert expected[:, names.index("merchant_fraud_rate_7d")].max() > 0
    assert expected[:, names.index("user_fraud_rate_30d")].max() > 0
    assert expected[:, names.index("user_labelled_count_1d")].max() > 0
    assert np.ptp(expected[:, names.index("amount_to_user_mean_7d")]) > 1
    assert expected[:, names.index("user_distinct_devices_30d")].max() >= 2
    assert df["timestamp"].duplicated().sum() > 1_000


@pytest.mark.slow
def test_backfill_equals_replayed_states(
    replayed: tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[EntityKey, State]],
) -> None:
    df, _, _, replay_states = replayed
    backfilled = backfill_states(df, CONFIG)
    assert set(backfilled) == set(replay_states)
    for key, state in replay_states.items():
        _assert_states_close(_canonical(backfilled[key]), _canonical(state))


def _canonical(state: State) -> State:
    """Running totals may be re-based: compare per-event amounts instead."""
    out = dict(state)
    totals = [out.pop("cum0"), *out.pop("cum")]
    out["amounts"] = [b - a for a, b in zip(totals, totals[1:], strict=False)]
    return out


def _assert_states_close(a: Any, b: Any) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_states_close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_states_close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-6)
    else:
        assert a == b and type(a) is type(b)


@pytest.mark.slow
def test_backfill_prefix_then_online_equals_batch() -> None:
    df = transactions(8_000, 300, 30, 60, seed=3)
    batch = compute_features(df, CONFIG)
    expected = batch.frame[batch.feature_names].to_numpy(dtype=np.float64)
    ts = df["timestamp"]
    tied = ts[ts.duplicated()]
    as_of = tied.iloc[len(tied) // 2]  # a tied time: its whole group goes online
    states = backfill_states(df, CONFIG, as_of=as_of)
    engine = OnlineFeatureEngine(CONFIG, available_roles=df.columns)
    replay = Replay(engine, dict(states))
    start = int((ts < as_of).sum())
    labelled = df.iloc[start:]
    for offset, txn in enumerate(labelled.to_dict("records")):
        txn["is_fraud"] = None if pd.isna(txn["is_fraud"]) else txn["is_fraud"]
        row = replay.step(txn)  # label carried with the event, used after delay
        assert np.abs(np.array(row) - expected[start + offset]).max() <= TOLERANCE


def test_label_arriving_early_is_held_until_the_delay() -> None:
    engine = OnlineFeatureEngine(FeatureConfig(label_delay="1d"))
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    fraud = {
        "transaction_id": "f",
        "user_id": "u",
        "merchant_id": "m",
        "amount": 5.0,
        "timestamp": t0,
    }
    states: dict[EntityKey, State | None] = dict(engine.update(fraud, {}))
    key = ("merchant", "m")
    assert states[key] is not None
    states[key] = engine.apply_label(states[key], "f", 1)  # type: ignore[arg-type]

    def probe(offset: str) -> dict[str, float]:
        txn = {
            "user_id": "v",
            "merchant_id": "m",
            "amount": 1.0,
            "timestamp": t0 + pd.Timedelta(offset),
        }
        return engine.compute(txn, states)

    assert probe("23h")["merchant_labelled_count_7d"] == 0
    assert probe("24h")["merchant_labelled_count_7d"] == 1
    assert probe("24h")["merchant_fraud_rate_7d"] == 1.0
    # a corrected label replaces the old one
    state = states[key]
    assert state is not None
    engine.apply_label(state, "f", 0)
    assert probe("24h")["merchant_labelled_count_7d"] == 1
    assert probe("24h")["merchant_fraud_rate_7d"] == 0.0
    # unknown or already pruned events leave the state as it was
    before = state_to_json(state)
    assert engine.apply_label(state, "nope", 1) is state
    assert state_to_json(state) == before
    with pytest.raises(FeatureInputError):
        engine.apply_label(state, "f", 3)


def test_update_prunes_old_events_and_keeps_window_sums() -> None:
    engine = OnlineFeatureEngine(CONFIG)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    states: dict[EntityKey, State | None] = {}
    for day in range(0, 100, 10):
        txn = {
            "user_id": "u",
            "merchant_id": "m",
            "device_id": "d",
            "is_fraud": 1,
            "amount": 1000.0 + day,
            "timestamp": t0 + pd.Timedelta(days=day),
            "transaction_id": str(day),
        }
        states.update(engine.update(txn, states))
    user, merchant = states[("user", "u")], states[("merchant", "m")]
    assert user is not None and merchant is not None
    assert len(user["ts"]) == 4  # days 60..90: within 30d of the last event
    assert len(merchant["ts"]) == 4  # 7d delay + 30d fraud window: days 60..90
    assert len(merchant["lab_ts"]) == len(merchant["fraud_ts"]) == 4
    assert user["tot"][0] == 10  # lifetime moments survive pruning
    assert sorted(user["seen"]) == sorted(engine.seen_roles)
    assert user["cum0"] < user["cum"][0]  # running totals were re-based
    probe = {"user_id": "u", "amount": 1.0, "timestamp": t0 + pd.Timedelta(days=91)}
    features = engine.compute(probe, states)
    assert features["user_amount_sum_30d"] == 1070.0 + 1080.0 + 1090.0
    assert features["user_txn_count_30d"] == 3


def test_late_event_keeps_state_sorted() -> None:
    engine = OnlineFeatureEngine(CONFIG)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    states: dict[EntityKey, State | None] = {}
    for minutes in (0, 30, 10):
        txn = {
            "user_id": "u",
            "amount": 1.0 + minutes,
            "timestamp": t0 + pd.Timedelta(minutes=minutes),
        }
        features = engine.compute(txn, states)
        states.update(engine.update(txn, states))
    assert features["user_txn_count_1h"] == 1  # only the event at 0 is earlier
    assert features["user_amount_sum_1h"] == 1.0
    user = states[("user", "u")]
    assert user is not None and user["ts"] == sorted(user["ts"])
    assert user["last_ts"] == user["ts"][-1] and user["prev_ts"] == user["ts"][1]
    assert user["cum"] == [1.0, 12.0, 43.0]  # totals follow the time order
    probe = {"user_id": "u", "amount": 1.0, "timestamp": t0 + pd.Timedelta(minutes=31)}
    assert engine.compute(probe, states)["user_amount_sum_1h"] == 43.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"user_id": None}, "user_id"),
        ({"amount": -1.0}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"amount": None}, "amount"),
        ({"timestamp": "not a time"}, "timestamp"),
        ({"timestamp": None}, "timestamp"),
        ({"timestamp": pd.NaT}, "timestamp"),
        ({"user_id": pd.NA}, "user_id"),
        ({"amount": float("nan")}, "amount"),
        ({"is_fraud": 7}, "is_fraud"),
    ],
)
def test_bad_online_input(change: dict[str, Any], field: str) -> None:
    engine = OnlineFeatureEngine(CONFIG)
    txn = {"user_id": "u", "amount": 3.0, "timestamp": "2026-01-01T00:00:00Z", **change}
    with pytest.raises(FeatureInputError) as info:
        engine.compute(txn, {})
        engine.update(txn, {})
    assert info.value.field == field


def test_engine_serves_the_training_feature_set() -> None:
    df = transactions(500, 40, 5).drop(columns=["device_id", "is_fraud"])
    batch = compute_features(df, CONFIG)
    engine = OnlineFeatureEngine(CONFIG, available_roles=batch.available_roles)
    assert engine.feature_names == batch.feature_names
    assert engine.dropped == batch.dropped
    assert engine.entity_types == ("user", "merchant")
    txn = {
        "user_id": 42,
        "merchant_id": "m",
        "device_id": "d",
        "amount": 1.0,
        "timestamp": "2026-01-01T00:00:00+00:00",
    }
    assert engine.entity_keys(txn) == [("user", "42"), ("merchant", "m")]


def test_online_path_does_not_import_pandas() -> None:
    from tests.support.fresh_process import loaded_after

    assert loaded_after("import ml.features, ml.features.online", ["pandas"]) == []


def test_timestamps_convert_like_batch() -> None:
    expected = 1_767_225_600_123_456_000  # 2026-01-01T00:00:00.123456Z
    aware = datetime(2026, 1, 1, 0, 0, 0, 123_456, tzinfo=UTC)
    paris = aware.astimezone(timezone(timedelta(hours=1)))
    for value in (
        aware,
        paris,
        aware.replace(tzinfo=None),  # naive = UTC, as in batch
        pd.Timestamp(aware),
        np.datetime64(expected, "ns"),
        "2026-01-01T00:00:00.123456Z",
        "2026-01-01T01:00:00.123456+01:00",
        expected,
    ):
        assert to_epoch_ns(value) == expected, value
    frame = pd.DataFrame({"timestamp": ["2026-01-01T01:00:00.123456+01:00"]})
    batch = compute_features(frame.assign(user_id="u", amount=1.0)).frame
    assert (
        batch.loc[0, "hour"]
        == OnlineFeatureEngine(CONFIG).compute(
            {"user_id": "u", "amount": 1.0, "timestamp": paris}, {}
        )["hour"]
    )


def test_a_user_label_counts_for_the_user_only_after_the_delay() -> None:
    engine = OnlineFeatureEngine(
        FeatureConfig(label_delay="1d", user_fraud_rate_windows=("1d",))
    )
    assert engine.labelled_entities == ("merchant", "user")
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    txn = {"transaction_id": "f", "user_id": "u", "merchant_id": "m", "amount": 5.0}
    states: dict[EntityKey, State | None] = dict(
        engine.update({**txn, "timestamp": t0}, {})
    )
    for key in engine.entity_keys(txn):
        state = states[key]
        assert state is not None
        states[key] = engine.apply_label(state, "f", 1)

    def probe(offset: str) -> dict[str, float]:
        later = {"user_id": "u", "merchant_id": "n", "amount": 25.0}
        return engine.compute({**later, "timestamp": t0 + pd.Timedelta(offset)}, states)

    assert probe("23h")["user_labelled_count_1d"] == 0
    assert probe("24h")["user_fraud_rate_1d"] == 1.0
    assert probe("24h")["amount_to_user_mean_24h"] == 5.0
    assert probe("49h")["user_labelled_count_1d"] == 0  # out of the window again
    # without the user's fraud rate, user states stay as compact as before
    plain = OnlineFeatureEngine(FeatureConfig(user_fraud_rate_windows=()))
    assert plain.labelled_entities == ("merchant",)
    user_state = plain.update({**txn, "timestamp": t0}, {})[("user", "u")]
    assert "tid" not in user_state
