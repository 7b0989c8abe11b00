"""Statements on the DBAPI cursor (shared/db/driver.py) store what Core stores, raise
Core's exceptions and fire Core's cursor events, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, select
from sqlalchemy.exc import IntegrityError

from shared.db.driver import ROWS_PER_INSERT, DriverCursor, DriverSQL
from shared.db.models import OnlineTransaction
from shared.db.session import Database

T = cast(Table, OnlineTransaction.__table__)
COLUMNS = [c.name for c in T.columns]


def _row(tid: str) -> dict[str, Any]:
    return {
        "namespace": "ns",
        "transaction_id": tid,
        "event_time": datetime(2026, 1, 17, 15, 0, 1, 250, tzinfo=UTC),
        "entity_keys": [["user", "u1"], ["merchant", "m1"]],
        "features": {"amount": 12.5, "hour": 15.0},
        "created_at": datetime.now(UTC),
    }


def _rows(sql: DriverSQL, tids: list[str]) -> list[tuple[Any, ...]]:
    """Rows bound for the driver, positional in column order."""
    return [
        tuple(sql.bind(T, c)(value) for c, value in _row(tid).items()) for tid in tids
    ]


def test_rows_read_back_through_core_as_written(db: Database) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    seen: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def count(_c: Any, _k: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    with db.engine.begin() as conn:
        DriverCursor(conn, sql).insert_many(T, COLUMNS, _rows(sql, ["a", "b"]))
    event.remove(db.engine, "before_cursor_execute", count)
    with db.engine.connect() as conn:
        got = conn.execute(select(T).where(T.c.transaction_id == "a")).mappings().one()
    want = _row("a")
    assert got["event_time"] == want["event_time"]
    assert got["entity_keys"] == want["entity_keys"]
    assert got["features"] == want["features"]
    # SQLite: a multi-row INSERT; PostgreSQL: COPY
    assert any("online_transactions" in s for s in seen), seen


def test_errors_come_out_as_core_exceptions_and_roll_back(db: Database) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        cursor = DriverCursor(conn, sql)
        cursor.insert_many(T, COLUMNS, _rows(sql, ["x"]))
        cursor.insert_many(T, COLUMNS, _rows(sql, ["x"]))  # same key
    with db.engine.connect() as conn:
        assert conn.execute(select(T.c.transaction_id)).all() == []


def test_insert_many_writes_every_row_across_statements(db: Database) -> None:
    """Multi-row statements: more rows than one statement takes, all bound values read
    back as Core reads them, and a suffix (ON CONFLICT) applied to each statement."""
    sql = DriverSQL(db.engine.dialect, [T])
    n = ROWS_PER_INSERT * 2 + 7
    with db.engine.begin() as conn:
        DriverCursor(conn, sql).insert_many(
            T, COLUMNS, _rows(sql, [f"t{i}" for i in range(n)])
        )
    with db.engine.begin() as conn:  # the same keys again, and one new
        DriverCursor(conn, sql).insert_many(
            T, COLUMNS, _rows(sql, ["t0", "t1", "new"]), " ON CONFLICT DO NOTHING"
        )
    with db.engine.connect() as conn:
        got = conn.execute(select(T)).mappings().all()
    assert len(got) == n + 1
    last = next(r for r in got if r["transaction_id"] == f"t{n - 1}")
    assert last["features"] == _row("x")["features"]
    assert last["event_time"] == _row("x")["event_time"]


def test_named_parameters_reach_the_driver_in_placeholder_order(db: Database) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    statement, names = sql.sql("SELECT :b AS b, :a AS a, :b AS again")
    assert names == ("b", "a", "b")
    assert ":" not in statement
    with db.engine.connect() as conn:
        cursor = DriverCursor(conn, sql)
        row = cursor.execute(
            "SELECT :b AS b, :a AS a, :b AS again", {"a": 1, "b": 2}
        ).fetchone()
    assert tuple(row) == (2, 1, 2)
