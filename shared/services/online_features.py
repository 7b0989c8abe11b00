"""The online feature store: per-entity state in the app database, updated exactly once
per transaction_id, in one short database transaction per scored transaction.

The formulas live in ``ml.features.online``; this module only moves state between the
database and that engine.

Storage is a snapshot plus an event log per entity. A busy merchant's state holds every
event of its windows (megabytes), so rewriting it on each transaction cannot be fast.
Instead a transaction:

1. bumps each entity's head sequence (an upsert of a small row, apart from the
   snapshot, that also locks the row on PostgreSQL; SQLite serialises writers with
   BEGIN IMMEDIATE) and reads back ``(gen, seq)``;
2. takes the state from this process's cache when the cache holds exactly the previous
   sequence of the same row generation, otherwise rebuilds it from the snapshot and the
   events after it (another worker wrote in between, or the entity is cold);
3. computes the features, folds the transaction in, appends one small event row per
   entity and the exactly-once record.

After enough events (a sixteenth of the state's size, so the cost per event stays
constant and a cold worker replays at most that many) the snapshot is rewritten and
the events it covers are deleted, in a second short transaction that does not hold up
the scoring one.

A retried transaction id finds its record and gets the stored features back, changing
nothing. Any failure evicts the touched entities from the cache (their in-memory state
may already be modified), so the next transaction rebuilds them from the database.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    NamedTuple,
    Protocol,
    TypeVar,
    cast,
    overload,
    runtime_checkable,
)

import orjson
from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from shared.db.driver import DriverCursor, DriverSQL
from shared.db.models import (
    FeatureEntityEvent,
    FeatureEntitySnapshot,
    FeatureEntityState,
    OnlineTransaction,
)
from shared.db.session import Database, sqlite_bulk_pages

if TYPE_CHECKING:
    import pandas as pd

    from ml.features.config import FeatureConfig, Float64Array
    from ml.features.online import EntityKey, OnlineFeatureEngine, State

log = logging.getLogger(__name__)
_STATE = cast(Table, FeatureEntityState.__table__)
_SNAP = cast(Table, FeatureEntitySnapshot.__table__)
_EVENTS = cast(Table, FeatureEntityEvent.__table__)
_TXN = cast(Table, OnlineTransaction.__table__)
_BULK_CHUNK = 2000
_ADVANCE_CHUNK = 500  # rows per head upsert: 7 parameters each, under SQLite's 32766
_LOCK_STRIPES = 1024
COMPACT_MIN_EVENTS = 32
_LABEL_OP = "label"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WARM_MAX_SNAPSHOT_BYTES = 64 * 1024
_WARM_CHUNK = 25  # states decoded per GIL hold: about a millisecond here


def namespace_for(config: Mapping[str, Any], roles: Iterable[str]) -> str:
    """A stable id of a feature configuration: same windows and roles, same state."""
    key = json.dumps({"config": dict(config), "roles": sorted(roles)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _config_and_roles(
    feature_config: Mapping[str, Any],
) -> tuple[FeatureConfig, tuple[str, ...]]:
    from ml.features import ROLES, FeatureConfig

    known = FeatureConfig().to_dict()
    config = FeatureConfig.from_dict(
        {k: v for k, v in feature_config.items() if k in known}
    )
    return config, tuple(feature_config.get("available_roles") or ROLES)


def feature_set_namespace(feature_config: Mapping[str, Any]) -> str:
    """The namespace of the store ``for_feature_config`` builds, without building it."""
    config, roles = _config_and_roles(feature_config)
    return namespace_for(config.to_dict(), roles)


@dataclass(frozen=True)
class OnlineFeatures:
    transaction_id: str
    features: dict[str, float]
    replayed: bool  # True when this transaction id had been applied before


@dataclass(frozen=True)
class BatchFeatures(Sequence[OnlineFeatures]):
    """``process_many``'s answer, by column: the batch path scores ``values`` and stores
    ``rows`` as they are, where a dict of 53 features per transaction cost it more than
    scoring. Indexing gives an ``OnlineFeatures`` (its dict built then)."""

    transaction_ids: list[str]
    names: tuple[str, ...]  # the columns, in the engine's ``feature_names`` order
    values: Float64Array  # (n, len(names))
    rows: list[list[float]]  # ``values`` as lists, as they are stored and logged
    replayed: list[bool]

    def __len__(self) -> int:
        return len(self.transaction_ids)

    @overload
    def __getitem__(self, i: int) -> OnlineFeatures: ...
    @overload
    def __getitem__(self, i: slice) -> list[OnlineFeatures]: ...
    def __getitem__(self, i: int | slice) -> OnlineFeatures | list[OnlineFeatures]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return OnlineFeatures(
            self.transaction_ids[i],
            dict(zip(self.names, self.rows[i], strict=True)),
            self.replayed[i],
        )


_T_contra = TypeVar("_T_contra", contravariant=True)


class CommitWith(Protocol[_T_contra]):
    """Work that must commit with an applied transaction, in its database transaction."""

    def __call__(self, applied: _T_contra, conn: Connection, /) -> None: ...


@runtime_checkable
class InsertWith(CommitWith[_T_contra], Protocol[_T_contra]):
    """A ``CommitWith`` that can also be said as one ``INSERT … SELECT`` (text with
    ``:name`` placeholders, its values in placeholder order, no WHERE clause):
    PostgreSQL's one-call path runs it in the statement that applies the transaction,
    one round trip for both (autocommit) instead of four (BEGIN, apply, insert,
    COMMIT). Scored before the apply: wasted when the transaction was known."""

    def insert_for(self, applied: _T_contra, /) -> tuple[str, Sequence[Any]]: ...


class _Head(NamedTuple):  # a tuple: a batch builds 16,000, a dataclass was slower
    gen: int
    seq: int  # the sequence number of the event being applied now
    snapshot_seq: int
    created: bool = False  # the row was inserted by this transaction: no history


@dataclass(slots=True)
class _Cached:
    gen: int
    seq: int
    state: State


class _StateCache:
    """Decoded states of recently used entities (LRU). Entries are only trusted when
    their ``(gen, seq)`` matches the row's head, so several workers can share a table."""

    def __init__(self, max_entities: int) -> None:
        self._max = max_entities
        self._items: OrderedDict[EntityKey, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: EntityKey) -> _Cached | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: EntityKey, gen: int, seq: int, state: State) -> None:
        self.put_many(((key, gen, seq, state),))

    def add(self, key: EntityKey, gen: int, seq: int, state: State) -> bool:
        """``put`` unless the key is cached already (what scoring cached is newer), or
        the cache is full; True if added."""
        with self._lock:
            if key in self._items or len(self._items) >= self._max:
                return False
            self._items[key] = _Cached(gen, seq, state)
            self._items.move_to_end(key, last=False)  # first to go, after the used
            return True

    @property
    def capacity(self) -> int:
        return self._max

    def put_many(self, items: Iterable[tuple[EntityKey, int, int, State]]) -> None:
        """``put`` of many entries under one hold of the lock (a batch has thousands)."""
        with self._lock:
            entries = self._items
            for key, gen, seq, state in items:
                entries[key] = _Cached(gen, seq, state)
                entries.move_to_end(key)
            while len(entries) > self._max:
                entries.popitem(last=False)

    def evict(self, keys: Iterable[EntityKey]) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _KeyLocks:
    """Striped in-process locks: a cached state is modified in place, so two threads of
    one worker must not apply transactions of the same entity at once."""

    def __init__(self, stripes: int = _LOCK_STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, keys: Iterable[EntityKey]) -> Iterator[None]:
        stripes = sorted({hash(key) % len(self._locks) for key in keys})
        for i in stripes:
            self._locks[i].acquire()
        try:
            yield
        finally:
            for i in reversed(stripes):
                self._locks[i].release()


_STATE_COLUMNS = [c.name for c in _STATE.columns]
_EVENT_COLUMNS = [c.name for c in _EVENTS.columns]
_TXN_COLUMNS = [c.name for c in _TXN.columns]
_SNAP_COLUMNS = [c.name for c in _SNAP.columns]
# the positional rows below are built in these orders
assert _STATE_COLUMNS == [
    "namespace", "entity_type", "entity_id", "updated_at", "seq", "snapshot_seq", "gen"
]  # fmt: skip
assert _EVENT_COLUMNS == ["namespace", "entity_type", "entity_id", "seq", "event"]
assert _SNAP_COLUMNS == [  # also the order of _snapshot_row's keys
    "namespace", "entity_type", "entity_id", "gen", "snapshot_seq", "state"
]  # fmt: skip
assert _TXN_COLUMNS == [
    "namespace", "transaction_id", "event_time", "entity_keys", "features", "created_at"
]  # fmt: skip
_HEAD = "RETURNING entity_type, entity_id, gen, seq, snapshot_seq"


@functools.cache
def _advance_sql(n: int, unless_known: bool) -> str:
    """The heads' upsert of n rows (positional parameters, row after row, then
    ``known_ns`` and ``tid``); with ``unless_known`` skipped whole when the
    transaction id ``:tid`` is known: the exactly-once check and the row locks in one
    statement (one round trip on PostgreSQL). Written for both databases: a VALUES
    list's columns are column1..N in each, and the WHERE clause is what lets SQLite
    parse ON CONFLICT after a SELECT."""
    rows = ", ".join(
        "(" + ", ".join(f":{c}{k}" for c in _STATE_COLUMNS) + ")" for k in range(n)
    )
    known = (
        f"WHERE NOT EXISTS (SELECT 1 FROM {_TXN.name} "
        "WHERE namespace = :known_ns AND transaction_id = :tid) "
        if unless_known
        else "WHERE true "
    )
    return (
        f"INSERT INTO {_STATE.name} ({', '.join(_STATE_COLUMNS)}) "
        f"SELECT * FROM (VALUES {rows}) AS v {known}"
        "ON CONFLICT (namespace, entity_type, entity_id) DO UPDATE SET "
        f"seq = {_STATE.name}.seq + excluded.seq, updated_at = excluded.updated_at "
        f"{_HEAD}"
    )


# PostgreSQL: ``_advance_sql`` for a batch's heads, from arrays (in the keys' order,
# which is the order the rows are locked in).
_PG_ADVANCE_MANY = (
    f"INSERT INTO {_STATE.name} ({', '.join(_STATE_COLUMNS)}) "
    "SELECT :ns, k.et, k.eid, :now, k.n, 0, k.gen "
    "FROM unnest(CAST(:types AS varchar[]), CAST(:ids AS varchar[]), "
    "CAST(:counts AS bigint[]), CAST(:gens AS bigint[])) AS k(et, eid, n, gen) "
    "ON CONFLICT (namespace, entity_type, entity_id) DO UPDATE SET "
    f"seq = {_STATE.name}.seq + excluded.seq, updated_at = excluded.updated_at "
    f"{_HEAD}"
)


@functools.cache
def _record_with_events(n: int) -> str:
    """PostgreSQL: n event rows and the transaction record in one statement (positional
    parameters: the events' rows, then the record's)."""
    rows = ", ".join(
        "(" + ", ".join(f":{c}{k}" for c in _EVENT_COLUMNS) + ")" for k in range(n)
    )
    return (
        f"WITH appended AS (INSERT INTO {_EVENTS.name} ({', '.join(_EVENT_COLUMNS)}) "
        f"VALUES {rows}) INSERT INTO {_TXN.name} ({', '.join(_TXN_COLUMNS)}) "
        f"VALUES ({', '.join(':r_' + c for c in _TXN_COLUMNS)})"
    )


_ENTITY = "namespace = :ns AND entity_type = :et AND entity_id = :eid"
_SNAPSHOT_SQL = (
    f"SELECT p.state, h.snapshot_seq, h.seq FROM {_STATE.name} h "
    f"LEFT JOIN {_SNAP.name} p ON p.namespace = h.namespace "
    "AND p.entity_type = h.entity_type AND p.entity_id = h.entity_id "
    "AND p.gen = h.gen AND p.snapshot_seq = h.snapshot_seq "
    "WHERE h.namespace = :ns AND h.entity_type = :et AND h.entity_id = :eid"
)
_EVENTS_SQL = (
    f"SELECT seq, event FROM {_EVENTS.name} WHERE {_ENTITY} "
    "AND seq > :after AND seq <= :upto ORDER BY seq"
)


# PostgreSQL: many keys looked up one by one through the primary key (unnest and a
# LATERAL subquery that OFFSET 0 keeps from being flattened into a join, whose plan
# would again depend on the statistics). An ``IN (...)`` list's plan does: with the
# events table last analyzed empty, PostgreSQL read the cold states of a batch by
# scanning every event of the entity type against the 2,000 ids (4 s of a 30 s bench
# window); an equality on the whole key prefix is an index condition whatever they say.
_PG_SNAPSHOTS = (
    "SELECT k.id, s.gen, s.snapshot_seq, s.state FROM unnest(CAST(:ids AS text[])) "
    f"AS k(id) CROSS JOIN LATERAL (SELECT gen, snapshot_seq, state FROM {_SNAP.name} "
    "WHERE namespace = :ns AND entity_type = :et AND entity_id = k.id OFFSET 0) s"
)
_PG_EVENTS = (
    "SELECT k.id, e.seq, e.event FROM unnest(CAST(:ids AS text[])) WITH ORDINALITY "
    f"AS k(id, n) CROSS JOIN LATERAL (SELECT seq, event FROM {_EVENTS.name} "
    "WHERE namespace = :ns AND entity_type = :et AND entity_id = k.id OFFSET 0) e "
    "ORDER BY k.n, e.seq"
)
_PG_KNOWN = (
    "SELECT k.id, t.features FROM unnest(CAST(:ids AS text[])) AS k(id) "
    f"CROSS JOIN LATERAL (SELECT features FROM {_TXN.name} "
    "WHERE namespace = :ns AND transaction_id = k.id OFFSET 0) t"
)


# PostgreSQL: one scored transaction in one call, from the heads the worker saw (cached
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
# PostgreSQL: the current states of a transaction's entities that the cache lacks, in
# one round trip and one snapshot of the database: each head (none for a new entity),
# its snapshot and the events after it (as the primary key orders them).
_PG_CURRENT_STATES = (
    "SELECT k.n, h.gen, h.seq, p.state, e.events "
    "FROM unnest(CAST(:types AS varchar[]), CAST(:ids AS varchar[])) "
    "WITH ORDINALITY AS k(et, eid, n) "
    f"CROSS JOIN LATERAL (SELECT gen, seq, snapshot_seq FROM {_STATE.name} "
    "WHERE namespace = :ns AND entity_type = k.et AND entity_id = k.eid OFFSET 0) h "
    f"LEFT JOIN LATERAL (SELECT state FROM {_SNAP.name} "
    "WHERE namespace = :ns AND entity_type = k.et AND entity_id = k.eid "
    "AND gen = h.gen AND snapshot_seq = h.snapshot_seq OFFSET 0) p ON true "
    f"LEFT JOIN LATERAL (SELECT array_agg(event ORDER BY seq) AS events "
    f"FROM {_EVENTS.name} WHERE namespace = :ns AND entity_type = k.et "
    "AND entity_id = k.eid AND seq > h.snapshot_seq AND seq <= h.seq) e ON true"
)


def recorded_namespaces(
    db: Database, transaction_ids: list[str], among: set[str]
) -> set[str]:
    """Which of the namespaces ``among`` (feature configurations) applied any of these
    transactions to their online state. Naming them keeps the lookup on the records'
    key: by transaction id alone PostgreSQL scanned every record (10.6 ms for 200,000
    against 0.64 ms, measured)."""
    unique = sorted(set(transaction_ids))
    found: set[str] = set()
    if not among:
        return found
    with db.online_engine.connect() as conn:
        for start in range(0, len(unique), _BULK_CHUNK):
            chunk = unique[start : start + _BULK_CHUNK]
            found.update(
                conn.execute(
                    select(_TXN.c.namespace)
                    .where(
                        _TXN.c.namespace.in_(sorted(among)),
                        _TXN.c.transaction_id.in_(chunk),
                    )
                    .distinct()
                ).scalars()
            )
    return found


class _NothingToLabel(Exception):
    """Rolls back a label transaction whose merchant state no longer exists."""


def _event_time(event: Mapping[str, Any]) -> datetime:
    """The event's time to the microsecond (floored, as ``_bound_event_times``)."""
    return _EPOCH + timedelta(microseconds=int(event["timestamp"]) // 1000)


class OnlineFeatureStore:
    """State for one feature configuration (windows, label delay, available columns).

    Keep one store per configuration per process (``for_feature_config`` does not
    cache; the scoring service does): its state cache is what makes a transaction of a
    busy entity cheap.
    """

    def __init__(
        self,
        db: Database,
        engine: OnlineFeatureEngine,
        roles: Iterable[str],
        *,
        cache_entities: int = 100_000,
        compact_min_events: int = COMPACT_MIN_EVENTS,
    ) -> None:
        self.db = db
        self.engine = engine
        self.roles = tuple(roles)
        self.namespace = namespace_for(engine.config.to_dict(), self.roles)
        self.compact_min_events = compact_min_events
        self._cache = _StateCache(cache_entities)
        self._warming = False
        self._warmed = 0
        self._stop_warming = threading.Event()
        self._warm_thread: threading.Thread | None = None
        self._locks = _KeyLocks()
        self._postgres = db.dialect == "postgresql"
        # options set once: per connection they cost a scored transaction measurably
        self._write_engine = db.online_engine.execution_options(
            sqlite_begin="immediate"
        )
        self._autocommit_engine = db.online_engine.execution_options(
            isolation_level="AUTOCOMMIT"
        )
        # the hot statements go to the driver (shared/db/driver.py); the rest is Core
        self._sql = DriverSQL(db.online_engine.dialect, (_STATE, _EVENTS, _TXN))
        self._known_stmt = select(_TXN.c.features).where(
            _TXN.c.namespace == bindparam("ns"),
            _TXN.c.transaction_id == bindparam("tid"),
        )
        key = and_(
            _STATE.c.namespace == bindparam("ns"),
            _STATE.c.entity_type == bindparam("et"),
            _STATE.c.entity_id == bindparam("eid"),
        )
        self._compact_stmt = (
            update(_STATE)
            .where(
                key,
                _STATE.c.gen == bindparam("g"),
                _STATE.c.snapshot_seq < bindparam("s"),
            )
            .values(snapshot_seq=bindparam("s"), updated_at=bindparam("now"))
        )
        upsert = (postgresql if self._postgres else sqlite).insert(_SNAP)
        self._snapshot_upsert = upsert.on_conflict_do_update(
            index_elements=["namespace", "entity_type", "entity_id"],
            set_={
                name: upsert.excluded[name] for name in ("gen", "snapshot_seq", "state")
            },
        )
        self._prune_events_stmt = _EVENTS.delete().where(
            _EVENTS.c.namespace == bindparam("ns"),
            _EVENTS.c.entity_type == bindparam("et"),
            _EVENTS.c.entity_id == bindparam("eid"),
            _EVENTS.c.seq <= bindparam("s"),
        )

    @classmethod
    def for_feature_config(
        cls, db: Database, feature_config: Mapping[str, Any], **options: Any
    ) -> OnlineFeatureStore:
        """The store serving a feature set, from its stored ``feature_config``."""
        from ml.features import OnlineFeatureEngine

        config, roles = _config_and_roles(feature_config)
        return cls(db, OnlineFeatureEngine(config, roles), roles, **options)

    # -- database primitives -----------------------------------------------------------

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

    def _params(self, key: EntityKey) -> dict[str, Any]:
        return {"ns": self.namespace, "et": key[0], "eid": key[1]}

    @overload
    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: None = None,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, _Head]: ...

    @overload
    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: str,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, _Head] | None: ...

    def _advance(
        self,
        tx: DriverCursor,
        keys: list[EntityKey],
        unless_known: str | None = None,
        counts: Mapping[EntityKey, int] | None = None,
    ) -> dict[EntityKey, _Head] | None:
        """Bump (or create) the entities' heads, locking their rows; keys are sorted so
        concurrent transactions lock in the same order.

        With ``unless_known``: None, and nothing changed, when that transaction id was
        applied before (on PostgreSQL checked inside the same statement)."""
        now = self._bound_now()
        # a new row: no snapshot, the events being appended now, a fresh generation
        proposed = {key: random.getrandbits(62) for key in keys}
        if self._postgres and unless_known is None:
            # a batch's thousands of heads in one statement: arrays bind and parse in
            # half the time of as many VALUES rows (16,000 heads: 150 against 295 ms)
            arrays = {
                "ns": self.namespace,
                "now": now,
                "types": [k[0] for k in keys],
                "ids": [k[1] for k in keys],
                "counts": [1 if counts is None else counts[k] for k in keys],
                "gens": list(proposed.values()),
            }
            result = tx.execute(_PG_ADVANCE_MANY, arrays).fetchall()
        else:
            result = []
            for begin in range(0, len(keys), _ADVANCE_CHUNK):
                chunk = keys[begin : begin + _ADVANCE_CHUNK]
                params: list[Any] = []
                for key in chunk:
                    seq = 1 if counts is None else counts[key]
                    params += self._head_values(key, seq, now, proposed[key])
                if unless_known is not None:
                    params += (self.namespace, unless_known)
                sql = _advance_sql(len(chunk), unless_known is not None)
                result += tx.execute(sql, params).fetchall()
        # a row that carries the generation this statement proposed was created by it
        heads = {
            (entity_type, entity_id): _Head(
                gen, seq, snapshot_seq, gen == proposed[(entity_type, entity_id)]
            )
            for entity_type, entity_id, gen, seq, snapshot_seq in result
        }
        if not heads and keys:
            return None  # the statement found the transaction id
        return heads

    def _replay(
        self,
        tx: DriverCursor,
        key: EntityKey,
        state: State | None,
        after: int,
        upto: int,
    ) -> State | None:
        if upto <= after:
            return state
        params = {**self._params(key), "after": after, "upto": upto}
        for _seq, payload in tx.execute(_EVENTS_SQL, params).fetchall():
            state = self._apply_event(key, state, payload)
        return state

    def _apply_event(
        self, key: EntityKey, state: State | None, payload: bytes
    ) -> State | None:
        event = orjson.loads(payload)
        if isinstance(event, list):  # a batch's transactions of this entity, in order
            for item in event:
                state = self.engine.update_entity(key, item, state)
            return state
        if event.get("op") == _LABEL_OP:
            if state is not None:
                self.engine.apply_label(state, event["transaction_id"], event["label"])
            return state
        return self.engine.update_entity(key, event, state)

    def _from_snapshot(
        self, tx: DriverCursor, key: EntityKey, upto: int | None = None
    ) -> tuple[State | None, int] | None:
        """The state after event ``upto`` (default: the head) from the snapshot and the
        events after it, with the head's sequence; None if the entity has no row."""
        from ml.features.online import state_from_json

        row = tx.execute(_SNAPSHOT_SQL, self._params(key)).fetchone()
        if row is None:
            return None
        snapshot, snapshot_seq, seq = row
        state = state_from_json(snapshot) if snapshot else None
        upto = seq if upto is None else upto
        return self._replay(tx, key, state, snapshot_seq, upto), seq

    def _warm(
        self, tx: DriverCursor, key: EntityKey, head: _Head
    ) -> tuple[bool, State | None]:
        """(True, the state before event ``head.seq``) when no snapshot read is needed:
        the row was created just now, or the cache holds this row generation at or
        after its snapshot (then only the events it missed are read, if any)."""
        if head.created:
            return True, None
        cached = self._cache.get(key)
        if (
            cached is None
            or cached.gen != head.gen
            or not head.snapshot_seq <= cached.seq < head.seq
        ):
            return False, None
        return True, self._replay(tx, key, cached.state, cached.seq, head.seq - 1)

    def _current(self, tx: DriverCursor, key: EntityKey, head: _Head) -> State | None:
        """The state before the event ``head.seq``, from the cache when it is current."""
        warm, state = self._warm(tx, key, head)
        if warm:
            return state
        loaded = self._from_snapshot(tx, key, head.seq - 1)
        return None if loaded is None else loaded[0]

    def _current_many(
        self, tx: DriverCursor, heads: Mapping[EntityKey, _Head]
    ) -> dict[EntityKey, State | None]:
        """``_current`` for many entities; those the cache cannot serve are read in bulk
        (``_read_states``)."""
        out: dict[EntityKey, State | None] = {}
        cold: dict[EntityKey, _Head] = {}
        for key, head in heads.items():
            warm, state = self._warm(tx, key, head)
            if warm:
                out[key] = state
            else:
                cold[key] = head
        out.update(self._read_states(tx, cold))
        return out

    def _read_states(
        self, tx: DriverCursor, heads: Mapping[EntityKey, _Head]
    ) -> dict[EntityKey, State | None]:
        """The states before each head's ``seq``, from the database alone (one query per
        entity type and chunk for snapshots, one for their events); the cache is
        neither read nor changed."""
        from ml.features.online import state_from_json

        out: dict[EntityKey, State | None] = {}
        by_type: dict[str, list[str]] = {}
        for entity_type, entity_id in heads:
            by_type.setdefault(entity_type, []).append(entity_id)
        for entity_type, ids in by_type.items():
            for start in range(0, len(ids), _BULK_CHUNK):
                chunk = ids[start : start + _BULK_CHUNK]
                snapshots, events = self._cold_rows(tx, entity_type, chunk)
                for entity_id, gen, snapshot_seq, blob in snapshots:
                    key = (entity_type, entity_id)
                    head = heads[key]
                    if (gen, snapshot_seq) == (head.gen, head.snapshot_seq):
                        out[key] = state_from_json(blob)
                for entity_id, seq, payload in events:  # in order per entity
                    key = (entity_type, entity_id)
                    head = heads[key]
                    if head.snapshot_seq < seq < head.seq:
                        out[key] = self._apply_event(key, out.get(key), payload)
        for key in heads:
            out.setdefault(key, None)
        return out

    def warm(self, limit: int) -> int:
        """Cache the states of the ``limit`` entities updated most recently (at most
        half the cache), each at its head (a few at a time, in short transactions),
        without replacing what scoring cached meanwhile. A worker that starts, or loads a
        model, then serves its active entities from memory instead of reading each on
        its first transaction (on PostgreSQL: one round trip instead of two). Run off
        the request path (``ModelServer`` starts it in a thread), and gently: states
        with a snapshot over ``WARM_MAX_SNAPSHOT_BYTES`` are left to scoring (decoding
        a busy merchant's takes milliseconds with the GIL held), the rest go in small
        chunks with pauses that keep it to a quarter of a core, and the collector
        waits until it is done. Returns how many states it cached; ``cache_stats``
        tells whether it is still running."""
        limit = min(limit, self._cache.capacity // 2)
        self._warming = True
        try:
            self._warmed = self._warm_up(limit) if limit > 0 else 0
        finally:
            self._warming = False
        return self._warmed

    def warm_in_background(self, limit: int) -> threading.Thread:
        """``warm`` in a daemon thread; ``cache_stats`` says ``warming`` from now on
        until it ends. A failure is logged: warming is an optimisation, scoring reads
        what it needs."""
        self._warming = limit > 0

        def run() -> None:
            try:
                cached = self.warm(limit)
            except Exception:  # noqa: BLE001 - see the docstring
                self._warming = False
                log.warning("online cache warm-up failed", exc_info=True)
                return
            log.info(
                "online cache: %d entity states loaded for %s", cached, self.namespace
            )

        thread = threading.Thread(target=run, name="online-cache-warm", daemon=True)
        self._warm_thread = thread
        thread.start()
        return thread

    def close(self, timeout: float = 10.0) -> None:
        """Stop a warm-up still running (it ends after the slice of entities it is
        reading) and wait for it: left running, it would keep reading the store's
        tables after its context closed (a test's next ``TRUNCATE`` deadlocked on it)."""
        self._stop_warming.set()
        thread = self._warm_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _warm_up(self, limit: int) -> int:
        snap = _SNAP.c
        size = func.coalesce(func.length(snap.state), 0)
        keys_stmt = (
            select(_STATE.c.entity_type, _STATE.c.entity_id)
            .outerjoin(
                _SNAP,
                and_(
                    snap.namespace == _STATE.c.namespace,
                    snap.entity_type == _STATE.c.entity_type,
                    snap.entity_id == _STATE.c.entity_id,
                    snap.gen == _STATE.c.gen,
                    snap.snapshot_seq == _STATE.c.snapshot_seq,
                ),
            )
            .where(
                _STATE.c.namespace == self.namespace,
                size <= WARM_MAX_SNAPSHOT_BYTES,
            )
            .order_by(_STATE.c.updated_at.desc())
            .limit(limit)
        )
        # Each chunk reads its heads and their states in a snapshot of its own: one
        # transaction held through the whole warm-up (seconds) kept PostgreSQL's
        # vacuum from the heads it updates meanwhile, and SQLite's checkpoints from
        # the WAL. SQLite: a transaction's reads see one snapshot already (WAL).
        options = {"isolation_level": "REPEATABLE READ"} if self._postgres else {}
        cached = 0
        with self.db.online_engine.connect().execution_options(**options) as conn:
            with conn.begin():
                keys = [(et, eid) for et, eid in conn.execute(keys_stmt)]
            for start in range(0, len(keys), _WARM_CHUNK):
                if self._stop_warming.is_set():
                    break
                began = time.thread_time()
                with conn.begin():
                    part = self._heads_of(conn, keys[start : start + _WARM_CHUNK])
                    states = self._read_states(DriverCursor(conn, self._sql), part)
                for key, state in states.items():
                    head = part[key]
                    if state is not None and self._cache.add(
                        key, head.gen, head.seq - 1, state
                    ):
                        cached += 1
                # at most a quarter of a core: requests (and other workers) first;
                # this thread's CPU time, not the wait for the database, sets the pause
                self._stop_warming.wait(3 * (time.thread_time() - began))
        return cached

    def _heads_of(
        self, conn: Connection, keys: list[EntityKey]
    ) -> dict[EntityKey, _Head]:
        """The heads of these entities (those that still have one), each as the head of
        the event after it: ``_read_states`` then reads the state at the head."""
        c = _STATE.c
        by_type: dict[str, list[str]] = {}
        for entity_type, entity_id in keys:
            by_type.setdefault(entity_type, []).append(entity_id)
        heads: dict[EntityKey, _Head] = {}
        for entity_type, ids in by_type.items():
            # by type: an equality on each key column but the last is what makes both
            # databases search the primary key (a row-value IN made SQLite scan the
            # namespace's heads for every slice: bench_predict.py waited 44-67 s for
            # the warm-up, against 5-11 s)
            rows = conn.execute(
                select(c.entity_id, c.gen, c.seq, c.snapshot_seq).where(
                    c.namespace == self.namespace,
                    c.entity_type == entity_type,
                    c.entity_id.in_(ids),
                )
            )
            for entity_id, gen, seq, snapshot_seq in rows:
                heads[(entity_type, entity_id)] = _Head(gen, seq + 1, snapshot_seq)
        return heads

    def _compact(self, entities: Iterable[tuple[EntityKey, _Head, State]]) -> None:
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
                        self._snapshot_row(key, head.gen, head.seq, params["blob"]),
                    )
                    conn.execute(self._prune_events_stmt, params)

    # -- scoring path -----------------------------------------------------------------

    def _stored(self, transaction_id: str) -> OnlineFeatures | None:
        with self.db.online_engine.connect() as conn:
            stored = conn.execute(
                self._known_stmt, {"ns": self.namespace, "tid": transaction_id}
            ).scalar()
        if stored is None:
            return None
        return OnlineFeatures(transaction_id, self._features_of(stored), True)

    def process(
        self,
        txn: Mapping[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None = None,
    ) -> OnlineFeatures:
        """Features of ``txn`` from the state before it, then fold it in: exactly once
        per transaction_id (a retry returns the first answer and changes nothing).

        ``commit_with(features, conn)`` runs inside the database transaction that
        applies a new transaction id, before it commits (the prediction log writes its
        row there): if it raises, nothing of the transaction is stored. An
        ``InsertWith`` keeps PostgreSQL's one-call path (see there); another callable
        takes the locked path."""
        from ml.features.online import normalize_transaction

        event = normalize_transaction(txn)  # validates before anything is written
        if event["transaction_id"] is None:
            from ml.features import FeatureInputError

            raise FeatureInputError("transaction_id is required", "transaction_id")
        try:
            return self._process(event, commit_with)
        except DBAPIError as exc:
            # the scoring engine skips the pool's ping: a connection the server dropped
            # fails here once, is discarded by the pool, and the transaction is retried
            if not exc.connection_invalidated:
                raise
            log.warning("online feature store reconnecting after: %s", exc.orig)
            return self._process(event, commit_with)

    def _process(
        self,
        event: dict[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures:
        transaction_id = str(event["transaction_id"])
        keys = sorted(self.engine.entity_keys(event))
        payload = orjson.dumps(event)
        with self._locks.hold(keys):
            # PostgreSQL: when a head moved on (another worker), its state is read
            # again and the call tried once more (three round trips), before the
            # locked path (five and more): two workers with warm caches meet this often
            one_call = self._postgres and (
                commit_with is None or isinstance(commit_with, InsertWith)
            )
            for _ in range(2 if one_call else 0):
                applied = self._apply_if_current(
                    event,
                    transaction_id,
                    keys,
                    payload,
                    cast("InsertWith[OnlineFeatures] | None", commit_with),
                )
                if applied is not None:
                    return applied
            try:
                with self._write() as tx:
                    heads = self._advance(tx, keys, unless_known=transaction_id)
                    if heads is None:
                        known = tx.conn.execute(
                            self._known_stmt,
                            {"ns": self.namespace, "tid": transaction_id},
                        ).scalar_one()
                        return OnlineFeatures(
                            transaction_id, self._features_of(known), True
                        )
                    states = {k: self._current(tx, k, heads[k]) for k in keys}
                    features, touched = self.engine.process(event, states)
                    record = self._record(
                        event, keys, self._values_of(features), self._now()
                    )
                    self._append(tx, heads, payload, record)
                    if commit_with is not None:
                        commit_with(
                            OnlineFeatures(transaction_id, features, False), tx.conn
                        )
            except IntegrityError:
                # the same transaction id, applied concurrently by another worker
                self._cache.evict(keys)
                stored = self._stored(transaction_id)
                if stored is None:
                    raise
                return stored
            except BaseException:
                self._cache.evict(keys)
                raise
            for key, head in heads.items():
                self._cache.put(key, head.gen, head.seq, touched[key])
            self._compact((k, h, touched[k]) for k, h in heads.items())
        return OnlineFeatures(transaction_id, features, False)

    def _apply_if_current(
        self,
        event: dict[str, Any],
        transaction_id: str,
        keys: list[EntityKey],
        payload: bytes,
        insert_with: InsertWith[OnlineFeatures] | None,
    ) -> OnlineFeatures | None:
        """PostgreSQL: the states the cache lacks read in one statement, the features
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
                _, _, event_time, entity_keys, features_json, now = self._record(
                    event, keys, self._values_of(features), self._now()
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
            self._cache.evict(keys)
            return self._stored(transaction_id)
        except DBAPIError as exc:
            self._cache.evict(keys)
            if getattr(exc.orig, "sqlstate", None) == _MOVED_ON:
                return None
            raise
        except BaseException:
            self._cache.evict(keys)
            raise
        outcome, known = rows[0][0], rows[0][6]
        if outcome != "applied":
            self._cache.evict(keys)
            if outcome == "known":
                return OnlineFeatures(transaction_id, self._features_of(known), True)
            return None  # a head moved on: the caller reads what was missed
        moved = {
            (entity_type, entity_id): _Head(gen, seq, snapshot_seq, False)
            for _, entity_type, entity_id, gen, seq, snapshot_seq, _ in rows
        }
        for key, head in moved.items():
            self._cache.put(key, head.gen, head.seq, touched[key])
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
            if (cached := self._cache.get(key)) is not None:
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
                    self._cache.put(key, gen, seq, state)
        return [found.get(key) or (random.getrandbits(62), -1, None) for key in keys]

    def _bound_now(self) -> Any:
        """Now, as a head row's ``updated_at`` goes to the driver."""
        return self._sql.bind(_STATE, "updated_at")(datetime.now(UTC))

    def _head_values(
        self, key: EntityKey, seq: int, now: Any, gen: int
    ) -> tuple[Any, ...]:
        """A head row, positional (``_STATE_COLUMNS``): its snapshot at sequence 0,
        ``now`` as ``_bound_now`` gives it, ``gen`` a fresh generation."""
        return (self.namespace, key[0], key[1], now, seq, 0, gen)

    def _snapshot_row(
        self, key: EntityKey, gen: int, snapshot_seq: int, state: bytes
    ) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "entity_type": key[0],
            "entity_id": key[1],
            "gen": gen,
            "snapshot_seq": snapshot_seq,
            "state": state,
        }

    def _event_row(self, key: EntityKey, seq: int, payload: bytes) -> tuple[Any, ...]:
        """An event row, positional (``_EVENT_COLUMNS``)."""
        return (self.namespace, key[0], key[1], seq, payload)

    def _record(
        self,
        event: Mapping[str, Any],
        keys: list[EntityKey],
        values: list[float],
        now: Any,
        event_time: Any = None,
    ) -> tuple[Any, ...]:
        """The exactly-once record of an applied transaction (its features are what a
        retry gets back), positional (``_TXN_COLUMNS``); ``now`` bound already.
        ``values``: the features in ``engine.feature_names`` order, stored so
        (``_features_of`` reads them back): a third of the bytes of names and values,
        which a batch writes ten thousand times. ``event_time``: bound already
        (``_bound_event_times``), else bound here."""
        sql, table = self._sql, _TXN
        return (
            self.namespace,
            str(event["transaction_id"]),
            sql.bind(table, "event_time")(_event_time(event))
            if event_time is None
            else event_time,
            sql.bind(table, "entity_keys")([list(k) for k in keys]),
            sql.bind(table, "features")(values),
            now,
        )

    def _bound_event_times(self, events: list[dict[str, Any]]) -> list[Any]:
        """The records' event times as the column binds them; on SQLite its text form
        straight from numpy (a batch's 10,000 in 3-5 ms, against 27 through the bind)."""
        if self._postgres:
            bind = self._sql.bind(_TXN, "event_time")
            return [bind(_event_time(event)) for event in events]
        import numpy as np

        ns = np.fromiter((e["timestamp"] for e in events), np.int64, len(events))
        micros = ns.astype("datetime64[ns]").astype("datetime64[us]")
        return [t.replace("T", " ") for t in np.datetime_as_string(micros).tolist()]

    def _values_of(self, stored: Any) -> list[float]:
        """A record's features as values in ``engine.feature_names`` order, from a
        stored record (either form ``_features_of`` reads) or a dict by name."""
        if isinstance(stored, list):
            return cast(list[float], stored)
        return [stored[name] for name in self.engine.feature_names]

    def _features_of(self, stored: Any) -> dict[str, float]:
        """A record's features by name: stored as values in ``engine.feature_names``
        order (the namespace fixes the names), or by name as before that."""
        if isinstance(stored, list):
            return dict(zip(self.engine.feature_names, stored, strict=True))
        return cast(dict[str, float], stored)

    def _now(self) -> Any:
        """The records' ``created_at``, bound for the driver."""
        return self._sql.bind(_TXN, "created_at")(datetime.now(UTC))

    def _append(
        self,
        tx: DriverCursor,
        heads: Mapping[EntityKey, _Head],
        payload: bytes,
        record: tuple[Any, ...] | None = None,
    ) -> None:
        """Append the event to each entity's log, plus the exactly-once record of a
        transaction (on PostgreSQL in one statement: one round trip fewer)."""
        events = [
            self._event_row(key, head.seq, payload) for key, head in heads.items()
        ]
        if self._postgres and events and record is not None:
            params = [value for row in events for value in row]
            tx.execute(_record_with_events(len(events)), [*params, *record])
            return
        tx.insert_many(_EVENTS, _EVENT_COLUMNS, events)
        if record is not None:
            tx.insert_many(_TXN, _TXN_COLUMNS, [record])

    def process_many(
        self,
        txns: list[Mapping[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None = None,
    ) -> BatchFeatures:
        """``process`` for many transactions, in the given order, in one database
        transaction: each entity's head moves once, its transactions of the batch go
        into one event row, and the records are written in bulk. The features are
        computed for the whole batch at once where it is in time order
        (``OnlineFeatureEngine.process_batch_matrix``), and come back by column. A
        transaction id seen before (or earlier in the same list) is a replay, as in
        ``process``. Invalid input raises FeatureInputError naming the item
        (``transactions[i].field``) before anything is written. ``commit_with``: as in
        ``process``, with the whole batch (replays included, flagged)."""
        from ml.features import FeatureInputError
        from ml.features.online import normalize_transaction

        events: list[dict[str, Any]] = []
        for i, txn in enumerate(txns):
            try:
                event = normalize_transaction(txn)
                if event["transaction_id"] is None:
                    raise FeatureInputError(
                        "transaction_id is required", "transaction_id"
                    )
            except FeatureInputError as exc:
                raise FeatureInputError(
                    f"transactions[{i}]: {exc}", f"transactions[{i}].{exc.field}"
                ) from exc
            events.append(event)
        if not events:
            return self._batch_features([], [], [])
        try:
            return self._process_many(events, commit_with)
        except IntegrityError:
            # another worker applied one of these ids meanwhile: it is known now
            return self._process_many(events, commit_with)

    def _process_many(
        self,
        events: list[dict[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None,
    ) -> BatchFeatures:
        tids = [str(e["transaction_id"]) for e in events]
        keys_of = [sorted(self.engine.entity_keys(e)) for e in events]
        every_key = sorted({k for keys in keys_of for k in keys})
        with self._locks.hold(every_key):
            try:
                with self._write(bulk=True) as tx:
                    known = self._known_many(tx, tids)
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
                        self._advance(tx, sorted(counts), counts=counts)
                        if counts
                        else {}
                    )
                    next_seq = {
                        key: head.seq - counts[key] + 1 for key, head in heads.items()
                    }
                    states = self._current_many(
                        tx,
                        {
                            key: _Head(
                                head.gen, next_seq[key], head.snapshot_seq, head.created
                            )
                            for key, head in heads.items()
                        },
                    )
                    now = self._now()
                    fresh_events = [events[i] for i in fresh]
                    fresh_values = self.engine.process_batch_matrix(
                        fresh_events, states, normalized=True
                    )
                    fresh_rows = fresh_values.tolist()
                    times = self._bound_event_times(fresh_events)
                    payloads: dict[int, bytes] = {}
                    records: list[tuple[Any, ...]] = []
                    for i, values, time_ in zip(fresh, fresh_rows, times, strict=True):
                        event = events[i]
                        payloads[i] = orjson.dumps(event)
                        records.append(
                            self._record(event, keys_of[i], values, now, time_)
                        )
                    event_rows: list[tuple[Any, ...]] = []
                    for key, run in runs.items():
                        payload = (
                            payloads[run[0]]
                            if len(run) == 1
                            else b"[" + b",".join(payloads[i] for i in run) + b"]"
                        )
                        event_rows.append(self._event_row(key, next_seq[key], payload))
                    tx.insert_many(_EVENTS, _EVENT_COLUMNS, event_rows)
                    tx.insert_many(_TXN, _TXN_COLUMNS, records)
                    batch = self._batch_of(
                        tids, known, first, fresh, fresh_rows, fresh_values
                    )
                    if commit_with is not None:
                        commit_with(batch, tx.conn)
            except BaseException:
                self._cache.evict(every_key)
                raise
            written = [
                (key, head, state)
                for key, head in heads.items()
                if (state := states[key]) is not None
            ]
            self._cache.put_many(
                (key, head.gen, head.seq, state) for key, head, state in written
            )
            self._compact(written)
        return batch

    def _batch_of(
        self,
        tids: list[str],
        known: Mapping[str, list[float]],
        first: Mapping[str, int],
        fresh: list[int],
        fresh_rows: list[list[float]],
        fresh_values: Float64Array,
    ) -> BatchFeatures:
        """The batch's features in its order: computed, or a replay's stored ones."""
        if len(fresh) == len(tids):  # the common case: nothing replayed
            return self._batch_features(
                tids, fresh_rows, [False] * len(tids), fresh_values
            )
        computed = dict(zip((tids[i] for i in fresh), fresh_rows, strict=True))
        rows = [known[tid] if tid in known else computed[tid] for tid in tids]
        replayed = [tid in known or first[tid] != i for i, tid in enumerate(tids)]
        return self._batch_features(tids, rows, replayed)

    def _batch_features(
        self,
        tids: list[str],
        rows: list[list[float]],
        replayed: list[bool],
        values: Float64Array | None = None,
    ) -> BatchFeatures:
        """``rows`` by column (``values``, when the caller has them already)."""
        import numpy as np

        names = tuple(self.engine.feature_names)
        if values is None:
            values = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
        return BatchFeatures(tids, names, values, rows, replayed)

    def _cold_rows(
        self, tx: DriverCursor, entity_type: str, ids: list[str]
    ) -> tuple[list[Any], list[Any]]:
        """Snapshot rows ``(id, gen, snapshot_seq, state)`` and event rows ``(id, seq,
        event)``, in sequence order per entity, of some entities of one type."""
        if self._postgres:
            params = {"ids": ids, "ns": self.namespace, "et": entity_type}
            return (
                tx.execute(_PG_SNAPSHOTS, params).fetchall(),
                tx.execute(_PG_EVENTS, params).fetchall(),
            )
        conn = tx.conn
        snapshots = conn.execute(
            select(
                _SNAP.c.entity_id, _SNAP.c.gen, _SNAP.c.snapshot_seq, _SNAP.c.state
            ).where(
                _SNAP.c.namespace == self.namespace,
                _SNAP.c.entity_type == entity_type,
                _SNAP.c.entity_id.in_(ids),
            )
        ).all()
        events = conn.execute(
            select(_EVENTS.c.entity_id, _EVENTS.c.seq, _EVENTS.c.event)
            .where(
                _EVENTS.c.namespace == self.namespace,
                _EVENTS.c.entity_type == entity_type,
                _EVENTS.c.entity_id.in_(ids),
            )
            .order_by(_EVENTS.c.entity_id, _EVENTS.c.seq)
        ).all()
        return list(snapshots), list(events)

    def _known_many(self, tx: DriverCursor, tids: list[str]) -> dict[str, Any]:
        unique = sorted(set(tids))
        known: dict[str, Any] = {}
        for start in range(0, len(unique), _BULK_CHUNK):
            chunk = unique[start : start + _BULK_CHUNK]
            if self._postgres:
                rows = tx.execute(
                    _PG_KNOWN, {"ids": chunk, "ns": self.namespace}
                ).fetchall()
            else:
                rows = tx.conn.execute(
                    select(_TXN.c.transaction_id, _TXN.c.features).where(
                        _TXN.c.namespace == self.namespace,
                        _TXN.c.transaction_id.in_(chunk),
                    )
                ).all()
            known.update({tid: self._values_of(stored) for tid, stored in rows})
        return known

    def apply_label(self, transaction_id: str, label: Any) -> bool:
        """Store a label that arrived after scoring; used once the label delay passed.
        False when the transaction was never scored here (or its merchant is gone)."""
        from ml.features.online import clean_label

        value = clean_label(label)
        with self.db.online_engine.connect() as conn:
            keys = conn.execute(
                select(_TXN.c.entity_keys).where(
                    _TXN.c.namespace == self.namespace,
                    _TXN.c.transaction_id == transaction_id,
                )
            ).scalar()
        merchants = sorted(
            (str(k[0]), str(k[1])) for k in (keys or []) if k[0] == "merchant"
        )
        if not merchants:
            return False
        payload = orjson.dumps(
            {"op": _LABEL_OP, "transaction_id": transaction_id, "label": value}
        )
        with self._locks.hold(merchants):
            try:
                with self._write() as tx:
                    heads = self._advance(tx, merchants)
                    states: dict[EntityKey, State] = {}
                    for key in merchants:
                        state = self._current(tx, key, heads[key])
                        if state is None:  # cleared since: nothing to label
                            raise _NothingToLabel
                        states[key] = self.engine.apply_label(
                            state, transaction_id, value
                        )
                    self._append(tx, heads, payload)
            except _NothingToLabel:
                self._cache.evict(merchants)
                return False
            except BaseException:
                self._cache.evict(merchants)
                raise
            for key, head in heads.items():
                self._cache.put(key, head.gen, head.seq, states[key])
        return True

    def states(self, keys: list[EntityKey]) -> dict[EntityKey, State]:
        """The entities' current states, read from the database (not the cache)."""
        out: dict[EntityKey, State] = {}
        with self.db.online_engine.connect() as conn:
            tx = DriverCursor(conn, self._sql)
            for key in keys:
                loaded = self._from_snapshot(tx, key)
                if loaded is not None and loaded[0] is not None:
                    out[key] = loaded[0]
        return out

    def is_live(self) -> bool:
        """True when transactions were scored into this state since its last backfill
        (their exactly-once records are cleared by a backfill)."""
        with self.db.online_engine.connect() as conn:
            found = conn.execute(
                select(_TXN.c.transaction_id)
                .where(_TXN.c.namespace == self.namespace)
                .limit(1)
            ).first()
        return found is not None

    @property
    def cached_entities(self) -> int:
        return len(self._cache)

    def cache_stats(self) -> dict[str, Any]:
        """This worker's cache of the namespace, for the health endpoint: a worker
        still warming serves its first transactions of cold entities more slowly."""
        return {
            "namespace": self.namespace,
            "entities": len(self._cache),
            "capacity": self._cache.capacity,
            "warming": self._warming,
            "warmed": self._warmed,
        }

    # -- bulk ---------------------------------------------------------------------------

    def backfill(
        self,
        df: pd.DataFrame,
        column_mapping: Mapping[str, str] | None = None,
        as_of: Any = None,
    ) -> int:
        """Replace the namespace's state with the history in ``df`` (vectorised), so a
        model put into production scores its first transaction with that history.
        Transactions applied before are forgotten with the state they built."""
        from ml.features import backfill_states, state_to_json

        states = backfill_states(
            df,
            self.engine.config,
            as_of,
            column_mapping=column_mapping,
            available_roles=self.roles,
        )
        now = self._bound_now()
        with self.db.writing(), self.db.online_engine.begin() as conn:
            self._clear(conn)
            tx = DriverCursor(conn, self._sql)
            items = list(states.items())
            for start in range(0, len(items), _BULK_CHUNK):
                chunk = items[start : start + _BULK_CHUNK]
                gens = [random.getrandbits(62) for _ in chunk]
                tx.insert_many(
                    _STATE,
                    _STATE_COLUMNS,
                    [
                        self._head_values(key, 0, now, gen)
                        for (key, _), gen in zip(chunk, gens, strict=True)
                    ],
                )
                tx.insert_many(
                    _SNAP,
                    _SNAP_COLUMNS,
                    [
                        tuple(
                            self._snapshot_row(
                                key, gen, 0, state_to_json(state)
                            ).values()
                        )
                        for (key, state), gen in zip(chunk, gens, strict=True)
                    ],
                )
        self._cache.clear()
        if self._postgres:
            self._analyze()
        return len(states)

    def _analyze(self) -> None:
        """Fresh planner statistics after a bulk load. Without them PostgreSQL read a
        batch's cold states (``entity_id = ANY(...)``) by scanning every entity of the
        type and filtering, until autovacuum got round to the tables: one batch in five
        took 5-6 s instead of 2 s in ``bench/bench_predict.py``."""
        with self.db.online_engine.begin() as conn:
            for table in (_STATE, _SNAP):
                conn.exec_driver_sql(f"ANALYZE {table.name}")

    def _clear(self, conn: Connection) -> None:
        for table in (_STATE, _SNAP, _EVENTS, _TXN):
            conn.execute(table.delete().where(table.c.namespace == self.namespace))

    def clear(self) -> None:
        with self.db.writing(), self.db.online_engine.begin() as conn:
            self._clear(conn)
        self._cache.clear()
