"""The online feature store on SQLite and PostgreSQL: the same features as batch, state
updated exactly once per transaction id, bulk backfill, late labels."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import IntegrityError

from ml.datagen import GeneratorConfig, generate_transactions
from ml.features import FeatureConfig, OnlineFeatureEngine, compute_features
from ml.features.config import ROLES
from shared.db.models import Prediction
from shared.db.session import Database
from shared.services.online_features import OnlineFeatures, OnlineFeatureStore
from shared.services.prediction_log import PredictionLog, PredictionRecord

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


def _online_engines(db: Database) -> tuple[Engine, ...]:
    """The engines of the scoring path."""
    return (db.online_engine,)


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


def test_the_adapter_is_the_databases_and_chosen_when_the_store_is_built(
    db: Database,
) -> None:
    from shared.adapters.online_state.postgresql import PostgresOnlineState
    from shared.adapters.online_state.sqlite import SqliteOnlineState

    want = PostgresOnlineState if db.dialect == "postgresql" else SqliteOnlineState
    assert type(_store(db).state) is want


@pytest.mark.slow
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


@pytest.mark.slow
def test_bulk_reads_go_by_key_whatever_the_statistics_say(
    pg_db: Database, transactions: pd.DataFrame
) -> None:
    """A batch's cold states and known ids are read through the primary key for every
    id, also when the planner's statistics are stale: here the events and records
    tables were last analyzed empty (by the backfill) and have grown since. With an
    ``IN (...)`` list PostgreSQL then scanned every event of the type against the list.
    The backfill also leaves fresh statistics for the heads and snapshots."""
    from sqlalchemy import text

    from shared.adapters.online_state.postgresql import (
        _PG_EVENTS,
        _PG_KNOWN,
        _PG_SNAPSHOTS,
    )

    store = _store(pg_db)
    store.backfill(transactions.iloc[:15_000])
    for txn in _records(transactions.iloc[15_000:15_600]):
        store.process(txn)
    with pg_db.engine.connect() as conn:
        analyzed = dict(
            conn.execute(
                text(  # reltuples: -1 until analyzed, written by ANALYZE itself
                    "SELECT relname, reltuples > 0 FROM pg_class WHERE relname IN "
                    "('feature_entity_state', 'feature_entity_snapshots')"
                )
            ).all()
        )
        users = sorted({str(u) for u in transactions["user_id"].iloc[15_000:15_600]})
        params = {"ids": users, "ns": store.namespace, "et": "user"}
        plans = {
            name: "\n".join(conn.execute(text(f"EXPLAIN {sql}"), params).scalars())
            for name, sql in (
                ("snapshots", _PG_SNAPSHOTS),
                ("events", _PG_EVENTS),
                ("known", _PG_KNOWN),
            )
        }
    assert analyzed == {"feature_entity_state": True, "feature_entity_snapshots": True}
    for name, plan in plans.items():
        key = "transaction_id" if name == "known" else "entity_id"
        conditions = [line for line in plan.splitlines() if "Index Cond" in line]
        assert any(f"({key})::text = k.id" in line for line in conditions), (name, plan)
        assert "Seq Scan" not in plan, (name, plan)


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


def _count(db: Database, table: str, namespace: str) -> int:
    from sqlalchemy import text

    with db.engine.connect() as conn:
        return int(
            conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE namespace = :ns"),
                {"ns": namespace},
            ).scalar_one()
        )


@pytest.mark.slow
def test_workers_sharing_the_state_stay_exact_and_snapshots_compact(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    """Two workers (each with its own state cache) take turns at random: each must see
    the other's events, from its cache plus the events it missed or from the snapshot.
    Snapshots are rewritten often here, so the rebuild-from-snapshot path runs too."""
    rng = np.random.default_rng(3)
    workers = [
        OnlineFeatureStore(
            db,
            OnlineFeatureEngine(FeatureConfig(), ROLES),
            ROLES,
            compact_min_events=4,
            cache_entities=200,  # smaller than the entities: evictions happen
        )
        for _ in range(2)
    ]
    rows = _records(transactions.head(4000))
    online = {}
    for txn, who in zip(rows, rng.integers(0, 2, len(rows)), strict=True):
        result = workers[who].process(txn)
        online[result.transaction_id] = result.features
    assert _max_abs_diff(online, batch) <= 1e-6
    namespace = workers[0].namespace
    events = _count(db, "feature_entity_events", namespace)
    written = sum(len(workers[0].engine.entity_keys(txn)) for txn in rows)
    assert 0 < events < written / 2, "compaction should have dropped covered events"


def test_a_failed_transaction_leaves_no_trace_in_state_or_cache(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame, monkeypatch: Any
) -> None:
    """The engine changes cached states in place before the write; when the write fails
    the transaction is rolled back and the cached states must not be trusted. (The
    record is made after the features and before the write, on every path.)"""
    store = _store(db)
    rows = _records(transactions.head(600))
    for txn in rows[:500]:
        store.process(txn)
    failing = rows[500]

    def broken(*_: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(store.state.rows, "record", broken)
    with pytest.raises(RuntimeError):
        store.process(failing)
    monkeypatch.undo()
    assert _stored_count(db, store) == 500
    online = {r.transaction_id: r.features for r in map(store.process, rows[500:])}
    assert _max_abs_diff(online, batch) <= 1e-6


def _stored_count(db: Database, store: OnlineFeatureStore) -> int:
    return _count(db, "online_transactions", store.namespace)


@pytest.mark.slow
def test_a_backfill_by_another_worker_invalidates_cached_states(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    """Worker B caches states, worker A backfills (new row generations): B must rebuild
    from the new snapshots, not reuse its cache, even where sequence numbers coincide."""
    a, b = _store(db), _store(db)
    history = transactions.iloc[:3000]
    a.backfill(history)
    for txn in _records(transactions.iloc[3000:3200]):
        b.process(txn)
    assert b.cached_entities > 0
    a.backfill(history)  # forget the 200 transactions b applied
    rows = _records(transactions.iloc[3000:3400])
    results = [b.process(txn) for txn in rows]
    assert not any(r.replayed for r in results), "the backfill forgot them"
    assert _max_abs_diff({r.transaction_id: r.features for r in results}, batch) <= 1e-6


@pytest.mark.slow
def test_a_connection_dropped_by_the_server_is_retried_once(
    pg_db: Database,
    transactions: pd.DataFrame,
    batch: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The scoring path skips the pool's ping; a dropped connection must cost a retry,
    not a failed transaction (nor a transaction applied twice)."""
    from sqlalchemy import text

    store = _store(pg_db)
    rows = _records(transactions.head(300))
    online = {}
    for n, txn in enumerate(rows):
        if n % 100 == 50:  # the server drops the scoring engine's pooled connection
            with pg_db.online_engine.connect() as pooled:
                pid = pooled.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with pg_db.engine.connect() as admin:
                admin.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        result = store.process(txn)
        online[result.transaction_id] = result.features
    assert _stored_count(pg_db, store) == len(rows)
    assert _max_abs_diff(online, batch) <= 1e-6
    assert caplog.text.count("reconnecting") == 3  # once per dropped connection


def test_records_keep_values_and_records_by_name_still_replay(
    db: Database, transactions: pd.DataFrame
) -> None:
    """A record stores the features' values in the engine's order (a third of the
    bytes); one stored by name, as before, replays the same."""
    from sqlalchemy import select, update

    from shared.db.models import OnlineTransaction

    table = OnlineTransaction.__table__
    store = _store(db)
    rows = _records(transactions.head(40))
    first = [store.process(txn) for txn in rows[:20]]
    first += store.process_many(rows[20:])
    with db.engine.begin() as conn:
        query = select(table.c.transaction_id, table.c.features, table.c.event_time)
        found = conn.execute(query).all()
        stored = {tid: features for tid, features, _ in found}
        old = first[3].transaction_id
        conn.execute(
            update(table)
            .where(table.c.transaction_id == old)
            .values(features=first[3].features)
        )
    # one by one and in a batch, the event time reads back as the timestamp
    when = {str(t["transaction_id"]): pd.Timestamp(t["timestamp"]) for t in rows}
    assert len(found) == 40
    for tid, _, event_time in found:
        expected = when[tid] if when[tid].tzinfo else when[tid].tz_localize("UTC")
        assert pd.Timestamp(event_time) == expected.floor("us")
    for result in (first[0], first[30]):
        assert stored[result.transaction_id] == [
            result.features[name] for name in store.engine.feature_names
        ]
    again = [store.process(txn) for txn in rows] + list(store.process_many(rows))
    for result, before in zip(again, first + first, strict=True):
        assert result.replayed and result.features == before.features


@pytest.mark.slow
def test_process_many_equals_batch_and_replays_known_ids(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    """The bulk path (/predict/batch) keeps the same point-in-time state as one by one:
    in-batch order, ids already applied and ids repeated inside the batch."""
    store = _store(db)
    rows = _records(transactions.head(3000))
    for txn in rows[:500]:
        store.process(txn)
    chunk = rows[400:2000] + [rows[1500]]  # 100 known ids, one repeated in the batch
    # another worker: every state is cold for it, read in bulk from snapshot + events;
    # afterwards the first worker's cache is behind and catches up from the events
    results = list(_store(db).process_many(chunk))
    assert [r.transaction_id for r in results] == [
        str(t["transaction_id"]) for t in chunk
    ]
    assert [r.replayed for r in results] == [True] * 100 + [False] * 1500 + [True]
    assert results[-1].features == results[1100].features
    # by column, as /predict/batch scores them: the same values as by name
    answer = store.process_many(chunk)  # all replays now, known from their records
    assert answer.names == tuple(store.engine.feature_names)
    assert answer.replayed == [True] * len(chunk)
    assert answer.values.shape == (len(chunk), len(answer.names))
    assert (
        answer.values.tolist()
        == answer.rows
        == [[r.features[name] for name in answer.names] for r in results]
    )
    for txn in rows[2000:]:  # and one by one again afterwards
        results.append(store.process(txn))
    online = {r.transaction_id: r.features for r in results}
    assert _max_abs_diff(online, batch) <= 1e-6
    assert _stored_count(db, store) == 3000


@pytest.mark.slow
def test_workers_taking_turns_at_batches_stay_exact(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    """Two workers score alternate batches: each catches up on the other's batches from
    their event rows (one per entity and batch, holding its transactions), warm from its
    cache or cold from the snapshot, and every feature still equals batch; singles in
    between read the same rows."""
    workers = [
        OnlineFeatureStore(
            db,
            OnlineFeatureEngine(FeatureConfig(), ROLES),
            ROLES,
            compact_min_events=3,  # snapshots rewritten often: both rebuild paths run
            cache_entities=300,
        )
        for _ in range(2)
    ]
    rows = _records(transactions.head(6000))
    online: dict[str, dict[str, float]] = {}
    start, turn = 0, 0
    for size in [700, 1, 900, 450, 1200, 3, 800, 1000, 946]:
        part = rows[start : start + size]
        store = workers[turn % 2]
        results = (
            store.process_many(part) if size > 3 else list(map(store.process, part))
        )
        assert not any(r.replayed for r in results)
        if size > 3:  # nothing replayed: the columns are the computed matrix
            assert results.values.tolist() == results.rows
        online.update({r.transaction_id: r.features for r in results})
        start, turn = start + size, turn + 1
    assert start == len(rows)
    assert _max_abs_diff(online, batch) <= 1e-6
    assert _stored_count(db, workers[0]) == len(rows)


def test_process_many_refuses_bad_input_before_writing(
    db: Database, transactions: pd.DataFrame
) -> None:
    from ml.features import FeatureInputError

    store = _store(db)
    rows = _records(transactions.head(10))
    rows[7] = {**rows[7], "amount": -3.0}
    with pytest.raises(FeatureInputError) as info:
        store.process_many(rows)
    assert info.value.field == "transactions[7].amount"
    assert _stored_count(db, store) == 0


def test_postgresql_applies_a_cached_transaction_in_one_statement(
    pg_db: Database, transactions: pd.DataFrame
) -> None:
    """With every entity cached, a transaction is one call of online_apply_if_current
    (two statements when the states are read first, or found new); when another worker
    moved a head on meanwhile, nothing of that call stays and the locked path applies
    it instead; a retry is answered by the same one call."""
    from sqlalchemy import event

    def store() -> OnlineFeatureStore:
        engine = OnlineFeatureEngine(FeatureConfig(), ROLES)
        return OnlineFeatureStore(pg_db, engine, ROLES, compact_min_events=10**9)

    a, b = store(), store()
    first = _records(transactions.head(1))[0]
    merchant = ("merchant", str(first["merchant_id"]))

    def same_entities(n: int) -> dict[str, Any]:
        stamp = first["timestamp"] + pd.Timedelta(seconds=n)
        return {**first, "transaction_id": f"again-{n}", "timestamp": stamp}

    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    for engine in _online_engines(pg_db):
        event.listen(engine, "before_cursor_execute", seen)
    try:
        a.process(first)  # new entities: looked for, then created by the call
        assert len(statements) == 2 and "online_apply_if_current" in statements[1]
        statements.clear()
        warm = a.process(same_entities(1))
        assert len(statements) == 1 and "online_apply_if_current" in statements[0]
        statements.clear()
        b.process(same_entities(2))  # another worker moves the heads on
        # b had none of them cached: their states are read in one statement first
        assert len(statements) == 2 and "online_apply_if_current" in statements[1]
        statements.clear()
        moved = a.process(same_entities(3))
        # a's cached heads are a step behind: the call answers 'moved', the states
        # are read again, and the second call applies (no locked path)
        assert len(statements) == 3, statements
        assert "online_apply_if_current" in statements[0]
        assert "array_agg" in statements[1]
        assert "online_apply_if_current" in statements[2]
        assert not moved.replayed
        statements.clear()
        retried = a.process(same_entities(1))
        assert len(statements) == 1
    finally:
        for engine in _online_engines(pg_db):
            event.remove(engine, "before_cursor_execute", seen)
    assert retried.replayed and retried.features == warm.features
    tids = [first["transaction_id"], *(f"again-{n}" for n in (1, 2, 3))]
    for worker in (a, b, store()):
        state = worker.states([merchant])[merchant]
        assert state["tid"] == tids  # in order, each once, from any worker
    # one event row per entity and transaction: the call that found a head moved on
    # left none behind
    events = _count(pg_db, "feature_entity_events", a.namespace)
    assert events == 4 * len(a.engine.entity_keys(first))


class _LogRowWith:
    """An InsertWith writing one prediction log row per applied transaction; its
    ``model_id`` decides whether the insert succeeds (an unknown model breaks its
    foreign key)."""

    def __init__(self, log: PredictionLog, model_id: uuid.UUID | None) -> None:
        self.log, self.model_id = log, model_id

    def _record(self, online: OnlineFeatures) -> PredictionRecord:
        return PredictionRecord.new(
            model_id=self.model_id,
            transaction_id=online.transaction_id,
            input_features=online.features,
            fraud_score=0.25,
            is_fraud=False,
            explanation={"top_features": []},
            latency_ms=1.0,
        )

    def __call__(self, online: OnlineFeatures, conn: Connection, /) -> None:
        self.log.write(conn, [self._record(online)])

    def insert_for(self, online: OnlineFeatures, /) -> tuple[str, list[Any]]:
        return self.log.insert_for([self._record(online)])


def test_postgresql_writes_an_insert_with_in_the_statement_that_applies(
    pg_db: Database, transactions: pd.DataFrame
) -> None:
    """An InsertWith's row is written by the one call that applies the transaction
    (one statement with a warm cache, no BEGIN or COMMIT); a known transaction writes
    none; an insert that fails leaves nothing of the transaction behind."""
    from sqlalchemy import event

    store = _store(pg_db)
    log = PredictionLog(pg_db)
    rows = _records(transactions.head(3))
    first = rows[0]
    log_rows = _LogRowWith(log, None)
    store.process(first, log_rows)  # caches the entities
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    same = {**first, "transaction_id": "same-entities"}
    same["timestamp"] = first["timestamp"] + pd.Timedelta(seconds=1)
    for engine in _online_engines(pg_db):
        event.listen(engine, "before_cursor_execute", seen)
    try:
        applied = store.process(same, log_rows)
        assert len(statements) == 1, statements
        assert "online_apply_if_current" in statements[0]
        assert "INSERT INTO predictions" in statements[0]
        statements.clear()
        again = store.process(same, log_rows)
        assert again.replayed and len(statements) == 1
    finally:
        for engine in _online_engines(pg_db):
            event.remove(engine, "before_cursor_execute", seen)
    with pg_db.engine.connect() as conn:
        logged = conn.execute(
            select(Prediction.transaction_id, Prediction.input_features)
        ).all()
    assert sorted(t for t, _ in logged) == [first["transaction_id"], "same-entities"]
    assert dict(logged)["same-entities"] == pytest.approx(applied.features, nan_ok=True)

    broken = {**rows[1], "transaction_id": "broken-insert"}
    with pytest.raises(IntegrityError):
        store.process(broken, _LogRowWith(log, uuid.uuid4()))
    assert _count(pg_db, "online_transactions", store.namespace) == 2
    retried = store.process(broken, log_rows)  # nothing was kept: applied anew
    assert not retried.replayed
    assert _count(pg_db, "online_transactions", store.namespace) == 3


def test_postgresql_scores_after_a_backfill_in_two_statements(
    pg_db: Database, transactions: pd.DataFrame, batch: pd.DataFrame
) -> None:
    """Heads written by a backfill (at sequence 0, state in the snapshot) are read and
    moved on by the one call, not sent down the locked path."""
    from sqlalchemy import event

    store = _store(pg_db)
    store.backfill(transactions.iloc[:3000])
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    online = {}
    for engine in _online_engines(pg_db):
        event.listen(engine, "before_cursor_execute", seen)
    try:
        for txn in _records(transactions.iloc[3000:3050]):
            statements.clear()
            result = store.process(txn)
            online[result.transaction_id] = result.features
            assert len(statements) <= 2, statements
            assert "online_apply_if_current" in statements[-1]
    finally:
        for engine in _online_engines(pg_db):
            event.remove(engine, "before_cursor_execute", seen)
    assert _max_abs_diff(online, batch) <= 1e-6


def test_closing_the_store_stops_its_warm_up(
    sqlite_db: Database, transactions: pd.DataFrame, monkeypatch: Any
) -> None:
    """close() ends a background warm-up after the slice it is reading and waits for
    it, so nothing of a closed context keeps reading the store's tables."""
    import threading

    store = _store(sqlite_db)
    store.backfill(transactions.iloc[:2000])
    slices: list[int] = []
    reading = threading.Event()
    read = store.state._read_states

    def slow(cursor: Any, part: Any) -> Any:
        slices.append(len(part))
        reading.set()
        time.sleep(0.05)
        return read(cursor, part)

    monkeypatch.setattr(store.state, "_read_states", slow)
    thread = store.warm_in_background(500)
    assert reading.wait(10)
    store.close()
    assert not thread.is_alive()
    assert 1 <= len(slices) < 500 // 25  # stopped well before its 20 slices
    assert store.cache_stats()["warming"] is False


def test_a_background_warm_up_says_when_it_runs_and_survives_a_failure(
    sqlite_db: Database,
    transactions: pd.DataFrame,
    monkeypatch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cache_stats says ``warming`` from the moment warm_in_background returns until
    the warm-up ends, then how many states it loaded; a failed warm-up is logged and
    reported as over."""
    import threading

    store = _store(sqlite_db)
    store.backfill(transactions.iloc[:2000])
    assert store.cache_stats()["warming"] is False
    gate = threading.Event()
    warm = store.warm

    def held(limit: int) -> int:  # the thread has not begun warming yet
        gate.wait(10)
        return warm(limit)

    monkeypatch.setattr(store, "warm", held)
    thread = store.warm_in_background(500)
    assert store.cache_stats()["warming"] is True
    gate.set()
    thread.join(10)
    stats = store.cache_stats()
    assert stats["warming"] is False and stats["warmed"] == 500
    assert stats["entities"] == 500 and stats["namespace"] == store.namespace

    def broken(_limit: int) -> int:
        raise RuntimeError("database gone")

    monkeypatch.setattr(store, "warm", broken)
    store.warm_in_background(500).join(10)
    assert store.cache_stats()["warming"] is False
    assert "online cache warm-up failed" in caplog.text

    # a cache too small to warm any of it: nothing loaded, and not left "warming"
    tiny = OnlineFeatureStore(sqlite_db, store.engine, store.roles, cache_entities=1)
    tiny.warm_in_background(500).join(10)
    assert tiny.cache_stats() | {"namespace": None} == {
        "namespace": None,
        "entities": 0,
        "capacity": 1,
        "warming": False,
        "warmed": 0,
    }


@pytest.mark.slow
def test_a_warmed_cache_holds_the_current_states_and_keeps_newer_ones(
    db: Database, transactions: pd.DataFrame, batch: pd.DataFrame, monkeypatch: Any
) -> None:
    """warm() caches what the database holds at each head (after a backfill and live
    transactions, so snapshots plus events), never replaces a state scoring cached
    since, and scoring from the warmed cache stays equal to batch."""
    a, b = _store(db), _store(db)
    a.backfill(transactions.iloc[:3000])
    live = _records(transactions.iloc[3000:3600])
    for txn in live[:300]:
        a.process(txn)
    first = b.process(live[300])  # b caches these entities before warming
    touched = sorted(b.engine.entity_keys(live[300]))
    before = {key: b.state.cache.get(key) for key in touched}
    warmed = b.warm(10**6)
    assert warmed > 100 and b.cached_entities == warmed + len(touched)
    assert all(b.state.cache.get(key) is before[key] for key in touched)
    sample = [key for key in b.state.cache.keys() if key not in before][:200]
    stored = b.states(sample)
    for key in sample:
        cached = b.state.cache.get(key)
        assert cached is not None and cached.state == stored[key], key
    # states whose snapshot is over the size limit are left to scoring
    from shared.adapters.online_state import reads

    monkeypatch.setattr(reads, "WARM_MAX_SNAPSHOT_BYTES", 2_000)
    small = _store(db)
    assert 0 < small.warm(10**6) < warmed
    online = {first.transaction_id: first.features}
    for txn in live[301:]:
        result = b.process(txn)
        online[result.transaction_id] = result.features
    assert _max_abs_diff(online, batch) <= 1e-6


@pytest.mark.slow
def test_warm_up_reads_in_short_transactions_that_see_compactions_meanwhile(
    db: Database, transactions: pd.DataFrame, monkeypatch: Any
) -> None:
    """No transaction lasts the whole warm-up (on PostgreSQL it would hold vacuum
    back, on SQLite the checkpoints): each chunk reads its heads again, so a snapshot
    written between the listing and the chunk is the one it reads."""
    from sqlalchemy import event

    from shared.adapters.online_state import reads

    a = _store(db)
    a.backfill(transactions.iloc[:3000])
    live = _records(transactions.iloc[3000:3400])
    for txn in live:
        a.process(txn)
    monkeypatch.setattr(reads, "WARM_CHUNK", 10)
    b = OnlineFeatureStore(
        db, OnlineFeatureEngine(FeatureConfig(), ROLES), ROLES, compact_min_events=1
    )
    listed = b.state._heads_of
    begun: list[int] = []
    engine = db.online_engine

    def begin(_conn: Any) -> None:
        begun.append(1)

    def heads_of(conn: Any, keys: list[Any]) -> Any:
        if len(begun) == 2:  # after the listing, before the first chunk's read
            for txn in live[:50]:
                b.process({**txn, "transaction_id": f"again-{txn['transaction_id']}"})
        return listed(conn, keys)

    monkeypatch.setattr(b.state, "_heads_of", heads_of)
    event.listen(engine, "begin", begin)
    try:
        warmed = b.warm(200)
    finally:
        event.remove(engine, "begin", begin)
    assert warmed >= 100
    assert len(begun) >= 1 + 100 // 10  # the listing, then one per chunk
    keys = list(b.state.cache.keys())
    stored = b.states(keys)
    for key in keys:
        cached = b.state.cache.get(key)
        assert cached is not None and cached.state == stored[key], key


def test_warm_up_reads_heads_by_their_whole_key(
    sqlite_db: Database, transactions: pd.DataFrame
) -> None:
    """Each slice's heads are searched by namespace, type and id: a row-value IN made
    SQLite scan all the namespace's heads for every slice of 25 (a warm-up of 43,500
    entities took seconds of CPU instead of milliseconds)."""
    from sqlalchemy import event

    db = sqlite_db
    store = _store(db)
    store.backfill(transactions.iloc[:2000])
    seen: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, params = args[2], args[3]
        if "FROM feature_entity_state" in statement and " IN (" in statement:
            seen.append((statement, params))

    event.listen(db.online_engine, "before_cursor_execute", capture)
    try:
        assert store.warm(100) > 0
    finally:
        event.remove(db.online_engine, "before_cursor_execute", capture)
    assert seen
    with db.online_engine.connect() as conn:
        for statement, params in seen:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params)
            details = " ".join(str(row[-1]) for row in plan)
            assert "entity_id=?" in details, details
