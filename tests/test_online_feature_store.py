"""The online feature store on SQLite and PostgreSQL: the same features as batch, state
updated exactly once per transaction id, bulk backfill, late labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from ml.features import FeatureConfig, OnlineFeatureEngine, compute_features
from ml.features.config import ROLES
from shared.db.session import Database
from shared.services.online_features import OnlineFeatureStore

N_REPLAY = 20_000


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(
            n_rows=N_REPLAY, n_users=1500, n_merchants=150, days=40, seed=11
        )
    )


@pytest.fixture(scope="module")
def batch(transactions: pd.DataFrame) -> pd.DataFrame:
    return compute_features(transactions, FeatureConfig()).frame.set_index(
        "transaction_id"
    )


def _store(db: Database) -> OnlineFeatureStore:
    return OnlineFeatureStore(db, OnlineFeatureEngine(FeatureConfig(), ROLES), ROLES)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return df.to_dict("records")  # type: ignore[return-value]


def _max_abs_diff(online: dict[str, dict[str, float]], batch: pd.DataFrame) -> float:
    got = pd.DataFrame.from_dict(online, orient="index")[batch.columns]
    want = batch.loc[got.index]
    a, b = got.to_numpy(np.float64), want.to_numpy(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    assert not (np.isnan(a) ^ np.isnan(b)).any(), "NaN in one path only"
    return float(np.nanmax(np.where(both_nan, 0.0, np.abs(a - b))))


@pytest.mark.slow
def test_online_equals_batch_over_a_replayed_dataset(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    store = _store(db)
    online = {}
    for txn in _records(transactions):
        result = store.process(txn)
        assert not result.replayed
        online[result.transaction_id] = result.features
    assert len(online) == N_REPLAY
    assert _max_abs_diff(online, batch) <= 1e-6


def test_retried_transaction_changes_nothing(
    db: Database, transactions: pd.DataFrame
) -> None:
    store = _store(db)
    rows = _records(transactions.head(300))
    for txn in rows[:-1]:
        store.process(txn)
    last = rows[-1]
    keys = store.engine.entity_keys(last)
    first = store.process(last)
    state_after_first = store.states(keys)
    again = store.process(last)
    assert again.replayed and not first.replayed
    assert again.features == first.features
    assert store.states(keys) == state_after_first


def test_backfill_then_online_equals_batch(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    cut = 15_000
    history, rest = transactions.iloc[:cut], transactions.iloc[cut : cut + 2_000]
    store = _store(db)
    written = store.backfill(history)
    assert written > 1000
    online = {r.transaction_id: r.features for r in map(store.process, _records(rest))}
    assert _max_abs_diff(online, batch) <= 1e-6


def test_late_label_is_stored_and_used_only_after_the_delay(
    db: Database, transactions: pd.DataFrame
) -> None:
    store = _store(db)
    unlabeled = transactions.drop(columns=["is_fraud"]).head(500)
    for txn in _records(unlabeled):
        store.process(txn)
    txn = _records(unlabeled)[-1]
    merchant = ("merchant", str(txn["merchant_id"]))
    before = store.states([merchant])[merchant]
    assert store.apply_label(str(txn["transaction_id"]), 1)
    after = store.states([merchant])[merchant]
    assert after["lab"][after["tid"].index(str(txn["transaction_id"]))] == 1
    assert after != before
    assert not store.apply_label("never-seen", 1)


def test_concurrent_first_transactions_of_a_new_entity_both_count(
    db: Database, transactions: pd.DataFrame
) -> None:
    """Two workers scoring the first transactions of the same new user at once: neither
    update may be lost (PostgreSQL cannot lock a row that does not exist yet)."""
    import threading

    template = _records(transactions.head(1))[0]
    stores = [_store(db), _store(db)]
    for n in range(15):
        user = f"new-user-{n}"
        barrier = threading.Barrier(2)

        def score(
            i: int, user: str = user, barrier: threading.Barrier = barrier
        ) -> None:
            txn = {
                **template,
                "transaction_id": f"{user}-{i}",
                "user_id": user,
                "timestamp": template["timestamp"] + pd.Timedelta(seconds=i),
            }
            barrier.wait()
            stores[i].process(txn)

        threads = [threading.Thread(target=score, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        key = ("user", user)
        assert len(stores[0].states([key])[key]["ts"]) == 2, user
