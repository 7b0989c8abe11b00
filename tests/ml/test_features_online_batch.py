"""A batch scored at once (``process_batch_matrix``) gets the features, and leaves the
states, that scoring its transactions one by one would, on both of its paths:
vectorised for batches in time order, one by one for the rest."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.features import EntityKey, FeatureConfig, OnlineFeatureEngine, State
from ml.features.online import Txn, backfill_states
from ml.features.online_batch import batch_features
from tests.ml.test_features_data import transactions

CONFIG = FeatureConfig()


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.drop(columns=["is_fraud"]).to_dict("records")  # type: ignore[no-any-return]


def _one_by_one(
    engine: OnlineFeatureEngine,
    txns: list[dict[str, Any]],
    states: dict[EntityKey, State | None],
) -> np.ndarray:
    rows = []
    for txn in txns:
        keys = engine.entity_keys(txn)
        features, touched = engine.process(txn, {k: states.get(k) for k in keys})
        states.update(touched)
        rows.append([features[name] for name in engine.feature_names])
    return np.asarray(rows)


def _at_once(
    engine: OnlineFeatureEngine,
    txns: list[dict[str, Any]],
    states: dict[EntityKey, State | None],
) -> np.ndarray:
    keys = {k for txn in txns for k in engine.entity_keys(txn)}
    batch = {k: states.get(k) for k in keys}
    rows = engine.process_batch_matrix(txns, batch)
    states.update(batch)
    assert rows.shape == (len(txns), len(engine.feature_names))
    return rows


@pytest.fixture(scope="module")
def history() -> tuple[pd.DataFrame, dict[EntityKey, State]]:
    """Labelled history in the states, then 6,000 live rows with ties, missing ids and
    new entities."""
    df = transactions(16_000, 500, 40, 60, seed=23)
    cut = 10_000
    states = backfill_states(df.iloc[:cut], CONFIG)
    return df.iloc[cut:].reset_index(drop=True), states


def _compare(
    live: pd.DataFrame,
    states: dict[EntityKey, State],
    sizes: list[int],
    *,
    vectorised: bool,
) -> None:
    engine = OnlineFeatureEngine(CONFIG, available_roles=live.columns)
    txns = _records(live)
    one: dict[EntityKey, State | None] = copy.deepcopy(states)  # type: ignore[arg-type]
    many: dict[EntityKey, State | None] = copy.deepcopy(states)  # type: ignore[arg-type]
    expected = _one_by_one(engine, txns, one)
    got, start = [], 0
    for size in sizes:
        part = txns[start : start + size]
        keys = {k for txn in part for k in engine.entity_keys(txn)}
        fast = batch_features(
            engine.plan, [Txn(t) for t in part], {k: many.get(k) for k in keys}
        )
        assert (fast is not None) is vectorised
        got.append(_at_once(engine, part, many))
        start += size
    assert start == len(txns)
    result = np.vstack(got)
    np.testing.assert_allclose(result, expected, rtol=1e-9, atol=1e-9)
    assert one.keys() == many.keys()
    for key in one:  # the states themselves went through the same updates
        assert one[key] == many[key], key
    # not vacuous: history, windows, labels, ties inside and across batches
    names = engine.feature_names
    assert expected[:, names.index("merchant_labelled_count_30d")].max() > 10
    assert expected[:, names.index("user_distinct_devices_30d")].max() >= 2
    assert expected[:, names.index("is_new_device")].sum() > 0
    assert expected[:, names.index("device_txn_count_30d")].min() == 0  # missing ids


@pytest.mark.slow
def test_batches_in_time_order_score_vectorised_as_one_by_one(
    history: tuple[pd.DataFrame, dict[EntityKey, State]],
) -> None:
    live, states = history
    # uneven sizes, so batch edges fall inside runs of equal timestamps
    sizes = [1, 7, 500, 1_492, 3_000, 1_000]
    ts = live["timestamp"].to_numpy()
    edges = np.cumsum(sizes)[:-1]
    assert any(ts[e] == ts[e - 1] for e in edges), "no batch edge inside a tie"
    _compare(live, states, sizes, vectorised=True)


@pytest.mark.slow
def test_new_users_in_a_batch_score_and_fold_as_one_by_one(
    history: tuple[pd.DataFrame, dict[EntityKey, State]],
) -> None:
    """Users with no state yet, some with several transactions in the batch: their
    first amount becomes the shift and their values are all first seen here."""
    live, states = history
    live = live.copy()
    fresh = live.index % 40 == 0
    live.loc[fresh, "user_id"] = [f"new_user_{i % 60}" for i in range(fresh.sum())]
    _compare(live, states, [2_500, 3_500], vectorised=True)


@pytest.mark.slow
def test_batch_out_of_time_order_goes_one_by_one(
    history: tuple[pd.DataFrame, dict[EntityKey, State]],
) -> None:
    live, states = history
    shuffled = live.sample(frac=1.0, random_state=3).reset_index(drop=True)
    _compare(shuffled, states, [len(shuffled)], vectorised=False)


def test_batch_with_labels_goes_one_by_one() -> None:
    df = transactions(3_000, 100, 10, 30, seed=4)
    states = backfill_states(df.iloc[:2_000], CONFIG)
    engine = OnlineFeatureEngine(CONFIG, available_roles=df.columns)
    txns = df.iloc[2_000:].to_dict("records")  # with is_fraud
    assert any(t["is_fraud"] == 1 for t in txns)
    one: dict[EntityKey, State | None] = copy.deepcopy(states)  # type: ignore[arg-type]
    many: dict[EntityKey, State | None] = copy.deepcopy(states)  # type: ignore[arg-type]
    keys = {k for txn in txns for k in engine.entity_keys(txn)}
    assert (
        batch_features(
            engine.plan, [Txn(t) for t in txns], {k: many.get(k) for k in keys}
        )
        is None
    )
    np.testing.assert_array_equal(
        _at_once(engine, txns, many), _one_by_one(engine, txns, one)
    )
    assert one == many


def test_transaction_at_its_entities_last_time_sees_the_same_history() -> None:
    """Ties with the state's latest time: the one-by-one path reads the moments before
    that time (``base``); so must the batch."""
    engine = OnlineFeatureEngine(CONFIG)
    t0 = pd.Timestamp("2026-03-01T12:00:00Z")
    first = [
        {"transaction_id": f"h{i}", "user_id": "u", "merchant_id": "m",
         "device_id": f"d{i % 2}", "location": "IN", "amount": 10.0 + i,
         "timestamp": t0 - pd.Timedelta(minutes=5 - i)}
        for i in range(5)
    ]  # fmt: skip
    later = [
        {"transaction_id": f"b{i}", "user_id": "u", "merchant_id": "m",
         "device_id": "d9", "location": "FR", "amount": 99.0 + i,
         "timestamp": t0 - pd.Timedelta(minutes=1) + pd.Timedelta(minutes=i // 2)}
        for i in range(6)
    ]  # fmt: skip
    one: dict[EntityKey, State | None] = {}
    _one_by_one(engine, first, one)
    many = copy.deepcopy(one)
    keys = {k for txn in later for k in engine.entity_keys(txn)}
    assert (
        batch_features(
            engine.plan, [Txn(t) for t in later], {k: many.get(k) for k in keys}
        )
        is not None
    )
    np.testing.assert_allclose(
        _at_once(engine, later, many), _one_by_one(engine, later, one), rtol=1e-12
    )
    assert one == many


@pytest.mark.slow
def test_search_by_entity_and_time_matches_brute_force_across_key_slices() -> None:
    """Times spanning years force several slices of entity codes (keys stay in int64)."""
    from ml.features.online_batch import first_at_or_after

    rng = np.random.default_rng(9)
    year = 365 * 86_400 * 10**9
    codes = np.sort(rng.integers(0, 300, 5_000))
    times = rng.integers(0, 40 * year, codes.size)
    order = np.lexsort((times, codes))
    codes, times = codes[order], times[order]
    q_codes = rng.integers(0, 300, 500)
    q_times = [rng.integers(year, 40 * year, q_codes.size) for _ in range(2)]
    found = first_at_or_after(codes, times, q_codes, q_times)
    assert found is not None
    pairs = list(zip(codes.tolist(), times.tolist(), strict=True))
    for q, result in zip(q_times, found, strict=True):
        expected = [
            int(np.searchsorted(np.array(pairs, dtype=[("c", "i8"), ("t", "i8")]),
                                np.array((c, t), dtype=[("c", "i8"), ("t", "i8")])))
            for c, t in zip(q_codes.tolist(), q.tolist(), strict=True)
        ]  # fmt: skip
        assert result.tolist() == expected


def test_run_that_prunes_and_rebases_midway_leaves_the_same_state() -> None:
    """Large old amounts, then a batch of small ones a month later: the entities'
    windows are pruned and their running totals re-based partway through the batch,
    which changes the floating-point sums after that point."""
    engine = OnlineFeatureEngine(CONFIG)
    t0 = pd.Timestamp("2026-01-01T00:00:00Z")

    def txn(tid: str, when: pd.Timestamp, amount: float) -> dict[str, Any]:
        return {
            "transaction_id": tid, "user_id": "u", "merchant_id": "m",
            "device_id": "d", "location": "IN", "amount": amount, "timestamp": when,
        }  # fmt: skip

    old = [txn(f"o{i}", t0 + pd.Timedelta(hours=12 * i), 1000.0 + i) for i in range(60)]
    new = [
        txn(f"n{i}", t0 + pd.Timedelta(days=45, hours=7 * i), 0.37 * (i + 1))
        for i in range(80)
    ]
    one: dict[EntityKey, State | None] = {}
    _one_by_one(engine, old, one)
    many = copy.deepcopy(one)
    expected = _one_by_one(engine, new, one)
    # re-based: the running totals no longer carry the 60,000 of the old amounts
    assert all(s is not None and s["cum"][-1] < 10_000 for s in one.values())
    np.testing.assert_allclose(_at_once(engine, new, many), expected, rtol=1e-9)
    assert one == many
