"""What the SQLite and PostgreSQL adapters of the online state share: the locked write
path, the batch path, labels, compaction and the bulk replace.

A transaction:

1. bumps each entity's head sequence (an upsert of a small row that also locks it on
   PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE) and reads back
   ``(gen, seq)``;
2. takes the state from the cache when it holds exactly the previous sequence of the
   same row generation, otherwise rebuilds it from the snapshot and the events after it
   (another worker wrote in between, or the entity is cold);
3. computes the features, folds the transaction in, appends one small event row per
   entity and the exactly-once record.

After enough events (a sixteenth of the state's size, so the cost per event stays
constant and a cold worker replays at most that many) the snapshot is rewritten and the
events it covers are deleted, in a second short transaction. Any failure evicts the
touched entities from the cache (their in-memory state may be modified already).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, overload

import orjson
from sqlalchemy import Connection, and_, bindparam, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.adapters.online_state.batch import apply_batch
from shared.adapters.online_state.cache import KeyLocks, StateCache
from shared.adapters.online_state.reads import StateReads
from shared.adapters.online_state.rows import Rows
from shared.adapters.online_state.schema import (
    ADVANCE_CHUNK,
    BULK_CHUNK,
    EVENT_COLUMNS,
    EVENTS,
    LABEL_OP,
    SNAP,
    SNAP_COLUMNS,
    STATE,
    STATE_COLUMNS,
    TXN,
    TXN_COLUMNS,
    Head,
    advance_sql,
    event_time,
)
from shared.db.driver import DriverCursor, DriverSQL
from shared.db.session import Database, sqlite_bulk_pages
from shared.ports import BatchFeatures, CommitWith, OnlineFeatures

if TYPE_CHECKING:
    from ml.features.online import EntityKey, OnlineFeatureEngine, State

log = logging.getLogger(__name__)
COMPACT_MIN_EVENTS = 32


class _NothingToLabel(Exception):
    """Rolls back a label transaction whose merchant state no longer exists."""


class SqlOnlineState(StateReads):
    """An ``OnlineStateStore`` on the app database; a subclass per backend gives the
    statements that differ."""

    _dialect_insert: ClassVar[Any]  # sqlalchemy.dialects.<name>.insert

    def __init__(
        self,
        db: Database,
        engine: OnlineFeatureEngine,
        namespace: str,
        *,
        cache_entities: int = 100_000,
        compact_min_events: int = COMPACT_MIN_EVENTS,
    ) -> None:
        self.db = db
        self.engine = engine
        self.namespace = namespace
        self.compact_min_events = compact_min_events
        self.cache = StateCache(cache_entities)
        self.locks = KeyLocks()
        self._stop_warming = threading.Event()
        # options set once: per connection they cost a scored transaction measurably
        self._write_engine = db.online_engine.execution_options(
            sqlite_begin="immediate"
        )
        # the hot statements go to the driver (shared/db/driver.py); the rest is Core
        self._sql = DriverSQL(db.online_engine.dialect, (STATE, EVENTS, TXN))
        self.rows = Rows(namespace, self._sql, engine.feature_names)
        self._known_stmt = select(TXN.c.features).where(
            TXN.c.namespace == bindparam("ns"),
            TXN.c.transaction_id == bindparam("tid"),
        )
        key = and_(
            STATE.c.namespace == bindparam("ns"),
            STATE.c.entity_type == bindparam("et"),
            STATE.c.entity_id == bindparam("eid"),
        )
        self._compact_stmt = (
            update(STATE)
            .where(
                key,
                STATE.c.gen == bindparam("g"),
                STATE.c.snapshot_seq < bindparam("s"),
            )
            .values(snapshot_seq=bindparam("s"), updated_at=bindparam("now"))
        )
        upsert = self._dialect_insert(SNAP)
        self._snapshot_upsert = upsert.on_conflict_do_update(
            index_elements=["namespace", "entity_type", "entity_id"],
            set_={
                name: upsert.excluded[name] for name in ("gen", "snapshot_seq", "state")
            },
        )
        self._prune_events_stmt = EVENTS.delete().where(
            EVENTS.c.namespace == bindparam("ns"),
            EVENTS.c.entity_type == bindparam("et"),
            EVENTS.c.entity_id == bindparam("eid"),
            EVENTS.c.seq <= bindparam("s"),
        )

    @property
    def cached_entities(self) -> int:
        return len(self.cache)

    @property
    def cache_capacity(self) -> int:
        return self.cache.capacity

    # -- the backends' parts --------------------------------------------------------------

    def _advance_many(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        proposed: Mapping[EntityKey, int],
        counts: Mapping[EntityKey, int] | None,
        now: Any,
    ) -> list[Any]:
        """``_advance`` without the exactly-once check: rows of ``HEAD``."""
        return self._advance_rows(tx, keys, proposed, counts, now, None)

    def _known_rows(self, tx: DriverCursor, tids: list[str]) -> list[Any]:
        """``(transaction_id, features)`` of those of ``tids`` applied before."""
        raise NotImplementedError

    def _bound_event_times(self, events: list[dict[str, Any]]) -> list[Any]:
        """The records' event times as the column binds them."""
        bind = self._sql.bind(TXN, "event_time")
        return [bind(event_time(event)) for event in events]

    def _append(
        self,
        tx: DriverCursor,
        heads: Mapping[EntityKey, Head],
        payload: bytes,
        record: tuple[Any, ...] | None = None,
    ) -> None:
        """Append the event to each entity's log, plus the exactly-once record."""
        tx.insert_many(EVENTS, EVENT_COLUMNS, self.rows.event_rows(heads, payload))
        if record is not None:
            tx.insert_many(TXN, TXN_COLUMNS, [record])

    def _apply_fast(
        self,
        event: dict[str, Any],
        transaction_id: str,
        keys: list[EntityKey],
        payload: bytes,
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures | None:
        """A backend's quicker way to apply ``event`` (the keys' locks held), or None
        for the locked path."""
        return None

    def _after_replace(self) -> None:
        """Work after a bulk replace (planner statistics, say)."""

    # -- database primitives ------------------------------------------------------------

    @contextmanager
    def _write(self, *, bulk: bool = False) -> Iterator[DriverCursor]:
        # SQLite: BEGIN IMMEDIATE takes the write lock before the first read, so two
        # writers of one entity never both read the old head (PostgreSQL: row locks).
        # ``bulk``: a batch's transaction, with a larger page cache on SQLite.
        with (
            self.db.writing(),
            self._write_engine.connect() as conn,
            sqlite_bulk_pages(conn) if bulk else nullcontext(),
            conn.begin(),
        ):
            yield DriverCursor(conn, self._sql)

    def _advance_rows(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        proposed: Mapping[EntityKey, int],
        counts: Mapping[EntityKey, int] | None,
        now: Any,
        unless_known: str | None,
    ) -> list[Any]:
        result: list[Any] = []
        for begin in range(0, len(keys), ADVANCE_CHUNK):
            chunk = keys[begin : begin + ADVANCE_CHUNK]
            params: list[Any] = []
            for key in chunk:
                seq = 1 if counts is None else counts[key]
                params += self.rows.head_values(key, seq, now, proposed[key])
            if unless_known is not None:
                params += (self.namespace, unless_known)
            sql = advance_sql(len(chunk), unless_known is not None)
            result += tx.execute(sql, params).fetchall()
        return result

    @overload
    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: None = None,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, Head]: ...

    @overload
    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: str,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, Head] | None: ...

    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: str | None = None,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, Head] | None:
        """Bump (or create) the entities' heads, locking their rows; keys are sorted so
        concurrent transactions lock in the same order.

        With ``unless_known``: None, and nothing changed, when that transaction id was
        applied before (checked inside the same statement)."""
        now = self.rows.bound_now()
        # a new row: no snapshot, the events being appended now, a fresh generation
        proposed = {key: random.getrandbits(62) for key in keys}
        if unless_known is None:
            result = self._advance_many(tx, keys, proposed, counts, now)
        else:
            result = self._advance_rows(tx, keys, proposed, counts, now, unless_known)
        # a row that carries the generation this statement proposed was created by it
        heads = {
            (entity_type, entity_id): Head(
                gen, seq, snapshot_seq, gen == proposed[(entity_type, entity_id)]
            )
            for entity_type, entity_id, gen, seq, snapshot_seq in result
        }
        if not heads and keys:
            return None  # the statement found the transaction id
        return heads

    # -- one transaction ----------------------------------------------------------------

    def apply(
        self,
        event: dict[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None = None,
    ) -> OnlineFeatures:
        """Features of ``event`` from the state before it, then fold it in: exactly once
        per transaction id. ``commit_with(features, conn)`` runs inside the database
        transaction that applies a new transaction id, before it commits."""
        try:
            return self._apply(event, commit_with)
        except DBAPIError as exc:
            # the scoring engine skips the pool's ping: a connection the server dropped
            # fails here once, is discarded by the pool, and the transaction is retried
            if not exc.connection_invalidated:
                raise
            log.warning("online feature store reconnecting after: %s", exc.orig)
            return self._apply(event, commit_with)

    def _apply(
        self,
        event: dict[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures:
        transaction_id = str(event["transaction_id"])
        keys = sorted(self.engine.entity_keys(event))
        payload = orjson.dumps(event)
        with self.locks.hold(keys):
            fast = self._apply_fast(event, transaction_id, keys, payload, commit_with)
            if fast is not None:
                return fast
            try:
                with self._write() as tx:
                    heads = self._advance(tx, keys, unless_known=transaction_id)
                    if heads is None:
                        known = tx.conn.execute(
                            self._known_stmt,
                            {"ns": self.namespace, "tid": transaction_id},
                        ).scalar_one()
                        return OnlineFeatures(
                            transaction_id, self.rows.features_of(known), True
                        )
                    states = {k: self._current(tx, k, heads[k]) for k in keys}
                    features, touched = self.engine.process(event, states)
                    record = self.rows.record(
                        event, keys, self.rows.values_of(features), self.rows.now()
                    )
                    self._append(tx, heads, payload, record)
                    if commit_with is not None:
                        commit_with(
                            OnlineFeatures(transaction_id, features, False), tx.conn
                        )
            except IntegrityError:
                # the same transaction id, applied concurrently by another worker
                self.cache.evict(keys)
                stored = self._stored(transaction_id)
                if stored is None:
                    raise
                return stored
            except BaseException:
                self.cache.evict(keys)
                raise
            for key, head in heads.items():
                self.cache.put(key, head.gen, head.seq, touched[key])
            self._compact((k, h, touched[k]) for k, h in heads.items())
        return OnlineFeatures(transaction_id, features, False)

    def apply_many(
        self,
        events: list[dict[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None = None,
    ) -> BatchFeatures:
        return apply_batch(self, events, commit_with)

    def _stored(self, transaction_id: str) -> OnlineFeatures | None:
        with self.db.online_engine.connect() as conn:
            stored = conn.execute(
                self._known_stmt, {"ns": self.namespace, "tid": transaction_id}
            ).scalar()
        if stored is None:
            return None
        return OnlineFeatures(transaction_id, self.rows.features_of(stored), True)

    def _compact(self, entities: Iterable[tuple[EntityKey, Head, State]]) -> None:
        """Write new snapshots of the entities whose events since the last one are many
        enough (a sixteenth of the state, at least ``compact_min_events``), all in one
        short transaction."""
        from ml.features.online import state_to_json

        due = [
            (key, head, state)
            for key, head, state in entities
            if head.seq - head.snapshot_seq
            >= max(self.compact_min_events, len(state["ts"]) // 16)
        ]
        if not due:
            return
        now = datetime.now(UTC)
        with self._write() as tx:
            conn = tx.conn
            for key, head, state in due:
                params = {
                    **self._params(key),
                    "g": head.gen,
                    "s": head.seq,
                    "blob": state_to_json(state),
                    "now": now,
                }
                if conn.execute(self._compact_stmt, params).rowcount:
                    conn.execute(
                        self._snapshot_upsert,
                        self.rows.snapshot_row(key, head.gen, head.seq, params["blob"]),
                    )
                    conn.execute(self._prune_events_stmt, params)

    # -- labels, bulk replace -------------------------------------------------------------

    def add_label(self, transaction_id: str, label: Any) -> bool:
        """Fold a late label into the states of a scored transaction that keep labels
        (its merchant; its user too when the user's fraud rate is served); False when
        it was never scored here (or those entities are gone)."""
        with self.db.online_engine.connect() as conn:
            keys = conn.execute(
                select(TXN.c.entity_keys).where(
                    TXN.c.namespace == self.namespace,
                    TXN.c.transaction_id == transaction_id,
                )
            ).scalar()
        kinds = self.engine.labelled_entities
        labelled = sorted((str(k[0]), str(k[1])) for k in (keys or []) if k[0] in kinds)
        if not labelled:
            return False
        payload = orjson.dumps(
            {"op": LABEL_OP, "transaction_id": transaction_id, "label": label}
        )
        with self.locks.hold(labelled):
            try:
                with self._write() as tx:
                    heads = self._advance(tx, labelled)
                    states: dict[EntityKey, State] = {}
                    for key in labelled:
                        state = self._current(tx, key, heads[key])
                        if state is None:  # cleared since: nothing to label
                            raise _NothingToLabel
                        states[key] = self.engine.apply_label(
                            state, transaction_id, label
                        )
                    self._append(tx, heads, payload)
            except _NothingToLabel:
                self.cache.evict(labelled)
                return False
            except BaseException:
                self.cache.evict(labelled)
                raise
            for key, head in heads.items():
                self.cache.put(key, head.gen, head.seq, states[key])
        return True

    def replace(self, states: Mapping[EntityKey, State]) -> int:
        """The namespace's state replaced by ``states``, each at sequence 0 of a fresh
        generation; the applied transaction ids are forgotten with the old state."""
        from ml.features import state_to_json

        now = self.rows.bound_now()
        with self.db.writing(), self.db.online_engine.begin() as conn:
            self._clear(conn)
            tx = DriverCursor(conn, self._sql)
            items = list(states.items())
            for start in range(0, len(items), BULK_CHUNK):
                chunk = items[start : start + BULK_CHUNK]
                gens = [random.getrandbits(62) for _ in chunk]
                tx.insert_many(
                    STATE,
                    STATE_COLUMNS,
                    [
                        self.rows.head_values(key, 0, now, gen)
                        for (key, _), gen in zip(chunk, gens, strict=True)
                    ],
                )
                tx.insert_many(
                    SNAP,
                    SNAP_COLUMNS,
                    [
                        tuple(
                            self.rows.snapshot_row(
                                key, gen, 0, state_to_json(state)
                            ).values()
                        )
                        for (key, state), gen in zip(chunk, gens, strict=True)
                    ],
                )
        self.cache.clear()
        self._after_replace()
        return len(states)

    def _clear(self, conn: Connection) -> None:
        for table in (STATE, SNAP, EVENTS, TXN):
            conn.execute(table.delete().where(table.c.namespace == self.namespace))

    def clear(self) -> None:
        with self.db.writing(), self.db.online_engine.begin() as conn:
            self._clear(conn)
        self.cache.clear()
