"""The online state's tables, row layouts and the statements both databases share.

Storage is a snapshot plus an event log per entity: ``feature_entity_state`` holds each
entity's head ``(gen, seq, snapshot_seq)``, ``feature_entity_snapshots`` the state at
``snapshot_seq`` and ``feature_entity_events`` the events after it;
``online_transactions`` is the exactly-once record of each applied transaction id.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, select

from shared.db.models import (
    FeatureEntityEvent,
    FeatureEntitySnapshot,
    FeatureEntityState,
    OnlineTransaction,
)
from shared.db.session import Database

STATE = cast(Table, FeatureEntityState.__table__)
SNAP = cast(Table, FeatureEntitySnapshot.__table__)
EVENTS = cast(Table, FeatureEntityEvent.__table__)
TXN = cast(Table, OnlineTransaction.__table__)
BULK_CHUNK = 2000
ADVANCE_CHUNK = 500  # rows per head upsert: 7 parameters each, under SQLite's 32766
LABEL_OP = "label"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

STATE_COLUMNS = [c.name for c in STATE.columns]
EVENT_COLUMNS = [c.name for c in EVENTS.columns]
TXN_COLUMNS = [c.name for c in TXN.columns]
SNAP_COLUMNS = [c.name for c in SNAP.columns]
# the positional rows of the adapters are built in these orders
assert STATE_COLUMNS == [
    "namespace", "entity_type", "entity_id", "updated_at", "seq", "snapshot_seq", "gen"
]  # fmt: skip
assert EVENT_COLUMNS == ["namespace", "entity_type", "entity_id", "seq", "event"]
assert SNAP_COLUMNS == [  # also the order of snapshot_row's keys
    "namespace", "entity_type", "entity_id", "gen", "snapshot_seq", "state"
]  # fmt: skip
assert TXN_COLUMNS == [
    "namespace", "transaction_id", "event_time", "entity_keys", "features", "created_at"
]  # fmt: skip
HEAD = "RETURNING entity_type, entity_id, gen, seq, snapshot_seq"


class Head(NamedTuple):  # a tuple: a batch builds 16,000, a dataclass was slower
    gen: int
    seq: int  # the sequence number of the event being applied now
    snapshot_seq: int
    created: bool = False  # the row was inserted by this transaction: no history


@functools.cache
def advance_sql(n: int, unless_known: bool) -> str:
    """The heads' upsert of n rows (positional parameters, row after row, then
    ``known_ns`` and ``tid``); with ``unless_known`` skipped whole when the
    transaction id ``:tid`` is known: the exactly-once check and the row locks in one
    statement. Written for both databases: a VALUES list's columns are column1..N in
    each, and the WHERE clause is what lets SQLite parse ON CONFLICT after a SELECT."""
    rows = ", ".join(
        "(" + ", ".join(f":{c}{k}" for c in STATE_COLUMNS) + ")" for k in range(n)
    )
    known = (
        f"WHERE NOT EXISTS (SELECT 1 FROM {TXN.name} "
        "WHERE namespace = :known_ns AND transaction_id = :tid) "
        if unless_known
        else "WHERE true "
    )
    return (
        f"INSERT INTO {STATE.name} ({', '.join(STATE_COLUMNS)}) "
        f"SELECT * FROM (VALUES {rows}) AS v {known}"
        "ON CONFLICT (namespace, entity_type, entity_id) DO UPDATE SET "
        f"seq = {STATE.name}.seq + excluded.seq, updated_at = excluded.updated_at "
        f"{HEAD}"
    )


_ENTITY = "namespace = :ns AND entity_type = :et AND entity_id = :eid"
SNAPSHOT_SQL = (
    f"SELECT p.state, h.snapshot_seq, h.seq FROM {STATE.name} h "
    f"LEFT JOIN {SNAP.name} p ON p.namespace = h.namespace "
    "AND p.entity_type = h.entity_type AND p.entity_id = h.entity_id "
    "AND p.gen = h.gen AND p.snapshot_seq = h.snapshot_seq "
    "WHERE h.namespace = :ns AND h.entity_type = :et AND h.entity_id = :eid"
)
EVENTS_SQL = (
    f"SELECT seq, event FROM {EVENTS.name} WHERE {_ENTITY} "
    "AND seq > :after AND seq <= :upto ORDER BY seq"
)


def event_time(event: Mapping[str, Any]) -> datetime:
    """The event's time to the microsecond (floored, as the adapters' bulk forms)."""
    return _EPOCH + timedelta(microseconds=int(event["timestamp"]) // 1000)


def recorded_namespaces(
    db: Database, transaction_ids: list[str], among: set[str]
) -> set[str]:
    """Which of the namespaces ``among`` (feature configurations) applied any of these
    transactions to their online state. Naming them keeps the lookup on the records'
    key: by transaction id alone PostgreSQL scanned every record."""
    unique = sorted(set(transaction_ids))
    found: set[str] = set()
    if not among:
        return found
    with db.online_engine.connect() as conn:
        for start in range(0, len(unique), BULK_CHUNK):
            chunk = unique[start : start + BULK_CHUNK]
            found.update(
                conn.execute(
                    select(TXN.c.namespace)
                    .where(
                        TXN.c.namespace.in_(sorted(among)),
                        TXN.c.transaction_id.in_(chunk),
                    )
                    .distinct()
                ).scalars()
            )
    return found
