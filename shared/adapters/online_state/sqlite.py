"""The online state on SQLite: writers serialised by ``BEGIN IMMEDIATE``, the locked
path for every transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from shared.adapters.online_state.base import SqlOnlineState
from shared.adapters.online_state.schema import EVENTS, SNAP, TXN
from shared.db.driver import DriverCursor


class SqliteOnlineState(SqlOnlineState):
    _dialect_insert = staticmethod(sqlite.insert)

    def _cold_rows(
        self, tx: DriverCursor, entity_type: str, ids: list[str]
    ) -> tuple[list[Any], list[Any]]:
        conn = tx.conn
        snapshots = conn.execute(
            select(
                SNAP.c.entity_id, SNAP.c.gen, SNAP.c.snapshot_seq, SNAP.c.state
            ).where(
                SNAP.c.namespace == self.namespace,
                SNAP.c.entity_type == entity_type,
                SNAP.c.entity_id.in_(ids),
            )
        ).all()
        events = conn.execute(
            select(EVENTS.c.entity_id, EVENTS.c.seq, EVENTS.c.event)
            .where(
                EVENTS.c.namespace == self.namespace,
                EVENTS.c.entity_type == entity_type,
                EVENTS.c.entity_id.in_(ids),
            )
            .order_by(EVENTS.c.entity_id, EVENTS.c.seq)
        ).all()
        return list(snapshots), list(events)

    def _known_rows(self, tx: DriverCursor, tids: list[str]) -> list[Any]:
        return list(
            tx.conn.execute(
                select(TXN.c.transaction_id, TXN.c.features).where(
                    TXN.c.namespace == self.namespace,
                    TXN.c.transaction_id.in_(tids),
                )
            ).all()
        )

    def _bound_event_times(self, events: list[dict[str, Any]]) -> list[Any]:
        """The column's text form straight from numpy: a batch's 10,000 several times
        faster than through the bind."""
        import numpy as np

        ns = np.fromiter((e["timestamp"] for e in events), np.int64, len(events))
        micros = ns.astype("datetime64[ns]").astype("datetime64[us]")
        return [t.replace("T", " ") for t in np.datetime_as_string(micros).tolist()]
