"""The online state on PostgreSQL: a scored transaction in one call of
``online_apply_if_current`` (migration 0005) when the worker's cached heads are
current, with an ``InsertWith``'s row in the same statement; arrays and ``COPY`` for
batches; keys looked up through the primary key whatever the statistics say."""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, cast

from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.adapters.online_state.base import SqlOnlineState
from shared.adapters.online_state.schema import (
    EVENT_COLUMNS,
    EVENTS,
    HEAD,
    SNAP,
    STATE,
    STATE_COLUMNS,
    TXN,
    TXN_COLUMNS,
    Head,
)
from shared.db.driver import DriverCursor
from shared.ports import CommitWith, InsertWith, OnlineFeatures

if TYPE_CHECKING:
    from ml.features.online import EntityKey, State

# ``advance_sql`` for a batch's heads, from arrays (in the keys' order,
# which is the order the rows are locked in).
_PG_ADVANCE_MANY = (
    f"INSERT INTO {STATE.name} ({', '.join(STATE_COLUMNS)}) "
    "SELECT :ns, k.et, k.eid, :now, k.n, 0, k.gen "
    "FROM unnest(CAST(:types AS varchar[]), CAST(:ids AS varchar[]), "
    "CAST(:counts AS bigint[]), CAST(:gens AS bigint[])) AS k(et, eid, n, gen) "
    "ON CONFLICT (namespace, entity_type, entity_id) DO UPDATE SET "
    f"seq = {STATE.name}.seq + excluded.seq, updated_at = excluded.updated_at "
    f"{HEAD}"
)


@functools.cache
def _record_with_events(n: int) -> str:
    """n event rows and the transaction record in one statement (positional
    parameters: the events' rows, then the record's)."""
    rows = ", ".join(
        "(" + ", ".join(f":{c}{k}" for c in EVENT_COLUMNS) + ")" for k in range(n)
    )
    return (
        f"WITH appended AS (INSERT INTO {EVENTS.name} ({', '.join(EVENT_COLUMNS)}) "
        f"VALUES {rows}) INSERT INTO {TXN.name} ({', '.join(TXN_COLUMNS)}) "
        f"VALUES ({', '.join(':r_' + c for c in TXN_COLUMNS)})"
    )


# Many keys looked up one by one through the primary key (unnest and a
# LATERAL subquery that OFFSET 0 keeps from being flattened into a join, whose plan
# would again depend on the statistics). An ``IN (...)`` list's plan does: with the
# events table last analyzed empty, PostgreSQL read the cold states of a batch by
# scanning every event of the entity type against the 2,000 ids (4 s of a 30 s bench
# window); an equality on the whole key prefix is an index condition whatever they say.
_PG_SNAPSHOTS = (
    "SELECT k.id, s.gen, s.snapshot_seq, s.state FROM unnest(CAST(:ids AS text[])) "
    f"AS k(id) CROSS JOIN LATERAL (SELECT gen, snapshot_seq, state FROM {SNAP.name} "
    "WHERE namespace = :ns AND entity_type = :et AND entity_id = k.id OFFSET 0) s"
)
_PG_EVENTS = (
    "SELECT k.id, e.seq, e.event FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY "
    f"AS k(id, n) CROSS JOIN LATERAL (SELECT seq, event FROM {EVENTS.name} "
    "WHERE namespace = :ns AND entity_type = :et AND entity_id = k.id OFFSET 0) e "
    "ORDER BY k.n, e.seq"
)
_PG_KNOWN = (
    "SELECT k.id, t.features FROM unnest(CAST(:ids AS text[])) AS k(id) "
    f"CROSS JOIN LATERAL (SELECT features FROM {TXN.name} "
    "WHERE namespace = :ns AND transaction_id = k.id OFFSET 0) t"
)


# One scored transaction in one call, from the heads the worker saw (cached
# or just read; migration 0005 says how). Positional: namespace, transaction id, the
# keys' types, ids, generations and sequences (-1: new), the event, then the record's
# event time, entity keys, features and now.
_APPLY_IF_CURRENT = (
    "SELECT outcome, entity_type, entity_id, gen, seq, snapshot_seq, known "
    "FROM online_apply_if_current(:ns, :tid, CAST(:types AS varchar[]), "
    "CAST(:ids AS varchar[]), CAST(:gens AS bigint[]), CAST(:seqs AS bigint[]), "
    ":event, :event_time, CAST(:keys AS json), CAST(:features AS json), :now)"
)


@functools.cache
def _apply_and_insert(insert: str) -> str:
    """``_APPLY_IF_CURRENT`` and an ``InsertWith``'s insert in one statement: the
    insert runs only if the transaction was applied; either fails, neither is kept."""
    return (
        f"WITH a AS MATERIALIZED ({_APPLY_IF_CURRENT}), w AS ({insert} "
        "WHERE EXISTS (SELECT FROM a WHERE a.outcome = 'applied')) "
        "SELECT outcome, entity_type, entity_id, gen, seq, snapshot_seq, known FROM a"
    )


_MOVED_ON = "40001"  # serialization_failure: another worker created a new entity first
# The current states of a transaction's entities that the cache lacks, in
# one round trip and one snapshot of the database: each head (none for a new entity),
# its snapshot and the events after it (as the primary key orders them).
_PG_CURRENT_STATES = (
    "SELECT k.n, h.gen, h.seq, p.state, e.events "
    "FROM unnest(CAST(:types AS varchar[]), CAST(:ids AS varchar[])) "
    "WITH ORDINALITY AS k(et, eid, n) "
    f"CROSS JOIN LATERAL (SELECT gen, seq, snapshot_seq FROM {STATE.name} "
    "WHERE namespace = :ns AND entity_type = k.et AND entity_id = k.eid OFFSET 0) h "
    f"LEFT JOIN LATERAL (SELECT state FROM {SNAP.name} "
    "WHERE namespace = :ns AND entity_type = k.et AND entity_id = k.eid "
    "AND gen = h.gen AND snapshot_seq = h.snapshot_seq OFFSET 0) p ON true "
    f"LEFT JOIN LATERAL (SELECT array_agg(event ORDER BY seq) AS events "
    f"FROM {EVENTS.name} WHERE namespace = :ns AND entity_type = k.et "
    "AND entity_id = k.eid AND seq > h.snapshot_seq AND seq <= h.seq) e ON true"
)


class PostgresOnlineState(SqlOnlineState):
    _dialect_insert = staticmethod(postgresql.insert)
    # each warm-up chunk reads its heads and states in one snapshot
    _warm_options: ClassVar[dict[str, Any]] = {"isolation_level": "REPEATABLE READ"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._autocommit_engine = self.db.online_engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )

    def _advance_many(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        proposed: Mapping[EntityKey, int],
        counts: Mapping[EntityKey, int] | None,
        now: Any,
    ) -> list[Any]:
        # a batch's thousands of heads in one statement: arrays bind and parse in
        # half the time of as many VALUES rows
        arrays = {
            "ns": self.namespace,
            "now": now,
            "types": [k[0] for k in keys],
            "ids": [k[1] for k in keys],
            "counts": [1 if counts is None else counts[k] for k in keys],
            "gens": [proposed[k] for k in keys],
        }
        return cast(list[Any], tx.execute(_PG_ADVANCE_MANY, arrays).fetchall())

    def _append(
        self,
        tx: DriverCursor,
        heads: Mapping[EntityKey, Head],
        payload: bytes,
        record: tuple[Any, ...] | None = None,
    ) -> None:
        """The event rows and the exactly-once record in one statement."""
        events = self.rows.event_rows(heads, payload)
        if not events or record is None:
            super()._append(tx, heads, payload, record)
            return
        params = [value for row in events for value in row]
        tx.execute(_record_with_events(len(events)), [*params, *record])

    def _cold_rows(
        self, tx: DriverCursor, entity_type: str, ids: list[str]
    ) -> tuple[list[Any], list[Any]]:
        params = {"ids": ids, "ns": self.namespace, "et": entity_type}
        return (
            tx.execute(_PG_SNAPSHOTS, params).fetchall(),
            tx.execute(_PG_EVENTS, params).fetchall(),
        )

    def _known_rows(self, tx: DriverCursor, tids: list[str]) -> list[Any]:
        return cast(
            list[Any],
            tx.execute(_PG_KNOWN, {"ids": tids, "ns": self.namespace}).fetchall(),
        )

    def _after_replace(self) -> None:
        """Fresh planner statistics after a bulk load: without them PostgreSQL read a
        batch's cold states by scanning every entity of the type, until autovacuum got
        round to the tables."""
        with self.db.online_engine.begin() as conn:
            for table in (STATE, SNAP):
                conn.exec_driver_sql(f"ANALYZE {table.name}")

    def _apply_fast(
        self,
        event: dict[str, Any],
        transaction_id: str,
        keys: list[EntityKey],
        payload: bytes,
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures | None:
        """When a head moved on (another worker), its state is read again and the call
        tried once more, before the locked path: two workers with warm caches meet this
        often. Another ``commit_with`` than an ``InsertWith`` takes the locked path."""
        if commit_with is not None and not isinstance(commit_with, InsertWith):
            return None
        for _ in range(2):
            applied = self._apply_if_current(
                event,
                transaction_id,
                keys,
                payload,
                cast("InsertWith[OnlineFeatures] | None", commit_with),
            )
            if applied is not None:
                return applied
        return None

    def _apply_if_current(
        self,
        event: dict[str, Any],
        transaction_id: str,
        keys: list[EntityKey],
        payload: bytes,
        insert_with: InsertWith[OnlineFeatures] | None,
    ) -> OnlineFeatures | None:
        """The states the cache lacks read in one statement, the features
        computed, then one call of ``online_apply_if_current`` (migration 0005) with
        ``insert_with``'s insert in the same statement, in autocommit: two round trips
        at most, against four and more on the locked path. None when a head moved on
        since it was read or cached (another worker): the caller then tries once more
        (the moved states are read again), then takes the locked path."""
        try:
            with self._autocommit_engine.connect() as conn:
                cursor = DriverCursor(conn, self._sql)
                heads = self._cached_or_read(cursor, keys)
                # computing the features moves the cached states on: on any outcome
                # but success they are dropped from the cache below
                features, touched = self.engine.process(
                    event, {key: h[2] for key, h in zip(keys, heads, strict=True)}
                )
                _, _, event_time, entity_keys, features_json, now = self.rows.record(
                    event, keys, self.rows.values_of(features), self.rows.now()
                )
                params: tuple[Any, ...] = (
                    self.namespace,
                    transaction_id,
                    [key[0] for key in keys],
                    [key[1] for key in keys],
                    [h[0] for h in heads],
                    [h[1] for h in heads],
                    payload,
                    event_time,
                    entity_keys,
                    features_json,
                    now,
                )
                statement = _APPLY_IF_CURRENT
                if insert_with is not None:
                    insert, values = insert_with.insert_for(
                        OnlineFeatures(transaction_id, features, False)
                    )
                    statement = _apply_and_insert(insert)
                    params = (*params, *values)
                rows = cursor.execute(statement, params).fetchall()
        except IntegrityError:
            # the same transaction id, applied concurrently by another worker
            self.cache.evict(keys)
            return self._stored(transaction_id)
        except DBAPIError as exc:
            self.cache.evict(keys)
            if getattr(exc.orig, "sqlstate", None) == _MOVED_ON:
                return None
            raise
        except BaseException:
            self.cache.evict(keys)
            raise
        outcome, known = rows[0][0], rows[0][6]
        if outcome != "applied":
            self.cache.evict(keys)
            if outcome == "known":
                return OnlineFeatures(
                    transaction_id, self.rows.features_of(known), True
                )
            return None  # a head moved on: the caller reads what was missed
        moved = {
            (entity_type, entity_id): Head(gen, seq, snapshot_seq, False)
            for _, entity_type, entity_id, gen, seq, snapshot_seq, _ in rows
        }
        for key, head in moved.items():
            self.cache.put(key, head.gen, head.seq, touched[key])
        self._compact((key, head, touched[key]) for key, head in moved.items())
        return OnlineFeatures(transaction_id, features, False)

    def _cached_or_read(
        self, cursor: DriverCursor, keys: list[EntityKey]
    ) -> list[tuple[int, int, State | None]]:
        """Each entity's ``(gen, seq, state)`` at its head, from the cache or else read
        in one statement (``_PG_CURRENT_STATES``) and cached; a new entity's is a fresh
        generation at sequence -1 (no row) with no state."""
        from ml.features.online import state_from_json

        found: dict[EntityKey, tuple[int, int, State | None]] = {}
        missing: list[EntityKey] = []
        for key in keys:
            if (cached := self.cache.get(key)) is not None:
                found[key] = (cached.gen, cached.seq, cached.state)
            else:
                missing.append(key)
        if missing:
            params = {
                "types": [key[0] for key in missing],
                "ids": [key[1] for key in missing],
                "ns": self.namespace,
            }
            for n, gen, seq, snapshot, events in cursor.execute(
                _PG_CURRENT_STATES, params
            ).fetchall():
                key = missing[n - 1]
                state = state_from_json(snapshot) if snapshot else None
                for payload in events or ():
                    state = self._apply_event(key, state, payload)
                found[key] = (gen, seq, state)
                if state is not None:
                    self.cache.put(key, gen, seq, state)
        return [found.get(key) or (random.getrandbits(62), -1, None) for key in keys]
