"""Reading states back: from the cache when it is current, else from the snapshot and
the events after it; the warm-up that fills the cache off the request path."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from sqlalchemy import Connection, and_, func, select

from shared.adapters.online_state.cache import StateCache
from shared.adapters.online_state.schema import (
    BULK_CHUNK,
    EVENTS_SQL,
    LABEL_OP,
    SNAP,
    SNAPSHOT_SQL,
    STATE,
    TXN,
    Head,
)
from shared.db.driver import DriverCursor, DriverSQL
from shared.db.session import Database

if TYPE_CHECKING:
    from ml.features.online import EntityKey, OnlineFeatureEngine, State

WARM_MAX_SNAPSHOT_BYTES = 64 * 1024
WARM_CHUNK = 25  # states decoded per GIL hold: about a millisecond here


class StateReads:
    """The read side of the SQL adapters; ``_cold_rows`` and ``_warm_options`` are
    each backend's."""

    db: Database
    engine: OnlineFeatureEngine
    namespace: str
    cache: StateCache
    _sql: DriverSQL
    _stop_warming: threading.Event
    _warm_options: ClassVar[dict[str, Any]] = {}

    def _cold_rows(
        self, tx: DriverCursor, entity_type: str, ids: list[str]
    ) -> tuple[list[Any], list[Any]]:
        """Snapshot rows ``(id, gen, snapshot_seq, state)`` and event rows ``(id, seq,
        event)``, in sequence order per entity, of some entities of one type."""
        raise NotImplementedError

    def _params(self, key: EntityKey) -> dict[str, Any]:
        return {"ns": self.namespace, "et": key[0], "eid": key[1]}

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
        for _seq, payload in tx.execute(EVENTS_SQL, params).fetchall():
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
        if event.get("op") == LABEL_OP:
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

        row = tx.execute(SNAPSHOT_SQL, self._params(key)).fetchone()
        if row is None:
            return None
        snapshot, snapshot_seq, seq = row
        state = state_from_json(snapshot) if snapshot else None
        upto = seq if upto is None else upto
        return self._replay(tx, key, state, snapshot_seq, upto), seq

    def _warm(
        self, tx: DriverCursor, key: EntityKey, head: Head
    ) -> tuple[bool, State | None]:
        """(True, the state before event ``head.seq``) when no snapshot read is needed:
        the row was created just now, or the cache holds this row generation at or
        after its snapshot (then only the events it missed are read, if any)."""
        if head.created:
            return True, None
        cached = self.cache.get(key)
        if (
            cached is None
            or cached.gen != head.gen
            or not head.snapshot_seq <= cached.seq < head.seq
        ):
            return False, None
        return True, self._replay(tx, key, cached.state, cached.seq, head.seq - 1)

    def _current(self, tx: DriverCursor, key: EntityKey, head: Head) -> State | None:
        """The state before the event ``head.seq``, from the cache when it is current."""
        warm, state = self._warm(tx, key, head)
        if warm:
            return state
        loaded = self._from_snapshot(tx, key, head.seq - 1)
        return None if loaded is None else loaded[0]

    def _current_many(
        self, tx: DriverCursor, heads: Mapping[EntityKey, Head]
    ) -> dict[EntityKey, State | None]:
        """``_current`` for many entities; those the cache cannot serve are read in bulk
        (``_read_states``)."""
        out: dict[EntityKey, State | None] = {}
        cold: dict[EntityKey, Head] = {}
        for key, head in heads.items():
            warm, state = self._warm(tx, key, head)
            if warm:
                out[key] = state
            else:
                cold[key] = head
        out.update(self._read_states(tx, cold))
        return out

    def _read_states(
        self, tx: DriverCursor, heads: Mapping[EntityKey, Head]
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
            for start in range(0, len(ids), BULK_CHUNK):
                chunk = ids[start : start + BULK_CHUNK]
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
        """True when transactions were applied to this state since its last backfill
        (their exactly-once records are cleared by a backfill)."""
        with self.db.online_engine.connect() as conn:
            found = conn.execute(
                select(TXN.c.transaction_id)
                .where(TXN.c.namespace == self.namespace)
                .limit(1)
            ).first()
        return found is not None

    # -- warm-up ------------------------------------------------------------------------

    def warm(self, limit: int) -> int:
        """Cache the states of the ``limit`` entities updated most recently, each at its
        head, a few at a time in short transactions, without replacing what scoring
        cached meanwhile. Gently: states with a snapshot over
        ``WARM_MAX_SNAPSHOT_BYTES`` are left to scoring (decoding one holds the GIL for
        milliseconds), the rest go in chunks with pauses that keep it to a quarter of a
        core. Returns how many it cached."""
        snap = SNAP.c
        size = func.coalesce(func.length(snap.state), 0)
        keys_stmt = (
            select(STATE.c.entity_type, STATE.c.entity_id)
            .outerjoin(
                SNAP,
                and_(
                    snap.namespace == STATE.c.namespace,
                    snap.entity_type == STATE.c.entity_type,
                    snap.entity_id == STATE.c.entity_id,
                    snap.gen == STATE.c.gen,
                    snap.snapshot_seq == STATE.c.snapshot_seq,
                ),
            )
            .where(
                STATE.c.namespace == self.namespace,
                size <= WARM_MAX_SNAPSHOT_BYTES,
            )
            .order_by(STATE.c.updated_at.desc())
            .limit(limit)
        )
        # Each chunk reads its heads and their states in a snapshot of its own: one
        # transaction held through the whole warm-up (seconds) would keep PostgreSQL's
        # vacuum from the heads it updates meanwhile, and SQLite's checkpoints.
        cached = 0
        with self.db.online_engine.connect().execution_options(
            **self._warm_options
        ) as conn:
            with conn.begin():
                keys = [(et, eid) for et, eid in conn.execute(keys_stmt)]
            for start in range(0, len(keys), WARM_CHUNK):
                if self._stop_warming.is_set():
                    break
                began = time.thread_time()
                with conn.begin():
                    part = self._heads_of(conn, keys[start : start + WARM_CHUNK])
                    states = self._read_states(DriverCursor(conn, self._sql), part)
                for key, state in states.items():
                    head = part[key]
                    if state is not None and self.cache.add(
                        key, head.gen, head.seq - 1, state
                    ):
                        cached += 1
                # at most a quarter of a core: requests (and other workers) first;
                # this thread's CPU time, not the wait for the database, sets the pause
                self._stop_warming.wait(3 * (time.thread_time() - began))
        return cached

    def stop_warming(self) -> None:
        """A warm-up running ends after the slice of entities it is reading."""
        self._stop_warming.set()

    def _heads_of(
        self, conn: Connection, keys: list[EntityKey]
    ) -> dict[EntityKey, Head]:
        """The heads of these entities (those that still have one), each as the head of
        the event after it: ``_read_states`` then reads the state at the head."""
        c = STATE.c
        by_type: dict[str, list[str]] = {}
        for entity_type, entity_id in keys:
            by_type.setdefault(entity_type, []).append(entity_id)
        heads: dict[EntityKey, Head] = {}
        for entity_type, ids in by_type.items():
            # by type: an equality on each key column but the last is what makes both
            # databases search the primary key (a row-value IN made SQLite scan the
            # namespace's heads for every slice)
            rows = conn.execute(
                select(c.entity_id, c.gen, c.seq, c.snapshot_seq).where(
                    c.namespace == self.namespace,
                    c.entity_type == entity_type,
                    c.entity_id.in_(ids),
                )
            )
            for entity_id, gen, seq, snapshot_seq in rows:
                heads[(entity_type, entity_id)] = Head(gen, seq + 1, snapshot_seq)
        return heads
