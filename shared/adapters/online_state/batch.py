"""The batch path of the SQL adapters: many transactions in one database transaction,
each entity's head moved once and its transactions of the batch in one event row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import IntegrityError

from shared.adapters.online_state.schema import (
    BULK_CHUNK,
    EVENT_COLUMNS,
    EVENTS,
    TXN,
    TXN_COLUMNS,
    Head,
)
from shared.ports import BatchFeatures, CommitWith

if TYPE_CHECKING:
    from ml.features.config import Float64Array
    from ml.features.online import EntityKey
    from shared.adapters.online_state.base import SqlOnlineState
    from shared.db.driver import DriverCursor


def apply_batch(
    store: SqlOnlineState,
    events: list[dict[str, Any]],
    commit_with: CommitWith[BatchFeatures] | None,
) -> BatchFeatures:
    """``apply`` for many events, in order, in one database transaction; features
    computed for the whole batch at once (``process_batch_matrix``). A transaction id
    seen before, or earlier in the list, is a replay. ``commit_with`` gets the whole
    batch (replays included, flagged)."""
    if not events:
        return store.rows.batch_features([], [], [])
    try:
        return _apply_batch(store, events, commit_with)
    except IntegrityError:
        # another worker applied one of these ids meanwhile: it is known now
        return _apply_batch(store, events, commit_with)


def _apply_batch(
    store: SqlOnlineState,
    events: list[dict[str, Any]],
    commit_with: CommitWith[BatchFeatures] | None,
) -> BatchFeatures:
    rows = store.rows
    tids = [str(e["transaction_id"]) for e in events]
    keys_of = [sorted(store.engine.entity_keys(e)) for e in events]
    every_key = sorted({k for keys in keys_of for k in keys})
    with store.locks.hold(every_key):
        try:
            with store._write(bulk=True) as tx:
                known = _known_many(store, tx, tids)
                fresh: list[int] = []
                first: dict[str, int] = {}
                for i, tid in enumerate(tids):
                    if tid not in known and tid not in first:
                        first[tid] = i
                        fresh.append(i)
                # one event row per entity: its transactions of the batch
                runs: dict[EntityKey, list[int]] = {}
                for i in fresh:
                    for key in keys_of[i]:
                        runs.setdefault(key, []).append(i)
                counts = dict.fromkeys(runs, 1)
                heads = (
                    store._advance(tx, sorted(counts), counts=counts) if counts else {}
                )
                next_seq = {
                    key: head.seq - counts[key] + 1 for key, head in heads.items()
                }
                states = store._current_many(
                    tx,
                    {
                        key: Head(
                            head.gen, next_seq[key], head.snapshot_seq, head.created
                        )
                        for key, head in heads.items()
                    },
                )
                now = rows.now()
                fresh_events = [events[i] for i in fresh]
                fresh_values = store.engine.process_batch_matrix(
                    fresh_events, states, normalized=True
                )
                fresh_rows = fresh_values.tolist()
                times = store._bound_event_times(fresh_events)
                payloads: dict[int, bytes] = {}
                records: list[tuple[Any, ...]] = []
                for i, values, time_ in zip(fresh, fresh_rows, times, strict=True):
                    event = events[i]
                    payloads[i] = orjson.dumps(event)
                    records.append(rows.record(event, keys_of[i], values, now, time_))
                event_rows: list[tuple[Any, ...]] = []
                for key, run in runs.items():
                    payload = (
                        payloads[run[0]]
                        if len(run) == 1
                        else b"[" + b",".join(payloads[i] for i in run) + b"]"
                    )
                    event_rows.append(rows.event_row(key, next_seq[key], payload))
                tx.insert_many(EVENTS, EVENT_COLUMNS, event_rows)
                tx.insert_many(TXN, TXN_COLUMNS, records)
                batch = _batch_of(
                    store, tids, known, first, fresh, fresh_rows, fresh_values
                )
                if commit_with is not None:
                    commit_with(batch, tx.conn)
        except BaseException:
            store.cache.evict(every_key)
            raise
        written = [
            (key, head, state)
            for key, head in heads.items()
            if (state := states[key]) is not None
        ]
        store.cache.put_many(
            (key, head.gen, head.seq, state) for key, head, state in written
        )
        store._compact(written)
    return batch


def _batch_of(
    store: SqlOnlineState,
    tids: list[str],
    known: Mapping[str, list[float]],
    first: Mapping[str, int],
    fresh: list[int],
    fresh_rows: list[list[float]],
    fresh_values: Float64Array,
) -> BatchFeatures:
    """The batch's features in its order: computed, or a replay's stored ones."""
    if len(fresh) == len(tids):  # the common case: nothing replayed
        return store.rows.batch_features(
            tids, fresh_rows, [False] * len(tids), fresh_values
        )
    computed = dict(zip((tids[i] for i in fresh), fresh_rows, strict=True))
    rows = [known[tid] if tid in known else computed[tid] for tid in tids]
    replayed = [tid in known or first[tid] != i for i, tid in enumerate(tids)]
    return store.rows.batch_features(tids, rows, replayed)


def _known_many(
    store: SqlOnlineState, tx: DriverCursor, tids: list[str]
) -> dict[str, Any]:
    unique = sorted(set(tids))
    known: dict[str, Any] = {}
    for start in range(0, len(unique), BULK_CHUNK):
        rows = store._known_rows(tx, unique[start : start + BULK_CHUNK])
        known.update({tid: store.rows.values_of(stored) for tid, stored in rows})
    return known
