"""Statements on the DBAPI cursor (shared/db/driver.py) store what Core stores, raise
Core's exceptions and fire Core's cursor events, on both databases; with the bypass
off (``SH_DB_DRIVER_CURSOR=false``) the same statements go through Core and write the
same rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import Engine, Table, delete, event, select
from sqlalchemy.exc import IntegrityError

from shared.db.driver import DIRECT, ROWS_PER_INSERT, DriverCursor, DriverSQL
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


@pytest.fixture(params=[True, False], ids=["on-cursor", "through-core"])
def engine(db: Database, request: pytest.FixtureRequest) -> Engine:
    """The database's engine with the bypass on, or off."""
    return db.engine.execution_options(**{DIRECT: request.param})


def test_rows_read_back_through_core_as_written(db: Database, engine: Engine) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    seen: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def count(_c: Any, _k: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    with engine.begin() as conn:
        DriverCursor(conn, sql).insert_many(T, COLUMNS, _rows(sql, ["a", "b"]))
    event.remove(db.engine, "before_cursor_execute", count)
    with db.engine.connect() as conn:
        got = conn.execute(select(T).where(T.c.transaction_id == "a")).mappings().one()
    want = _row("a")
    assert got["event_time"] == want["event_time"]
    assert got["entity_keys"] == want["entity_keys"]
    assert got["features"] == want["features"]
    # SQLite: a multi-row INSERT; PostgreSQL: COPY on the cursor, else executemany
    assert any("online_transactions" in s for s in seen), seen


def test_errors_come_out_as_core_exceptions_and_roll_back(
    db: Database, engine: Engine
) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    with pytest.raises(IntegrityError), engine.begin() as conn:
        cursor = DriverCursor(conn, sql)
        cursor.insert_many(T, COLUMNS, _rows(sql, ["x"]))
        cursor.insert_many(T, COLUMNS, _rows(sql, ["x"]))  # same key
    with db.engine.connect() as conn:
        assert conn.execute(select(T.c.transaction_id)).all() == []


def test_insert_many_writes_every_row_across_statements(
    db: Database, engine: Engine
) -> None:
    """Multi-row statements: more rows than one statement takes, all bound values read
    back as Core reads them, and a suffix (ON CONFLICT) applied to each statement."""
    sql = DriverSQL(db.engine.dialect, [T])
    n = ROWS_PER_INSERT * 2 + 7
    with engine.begin() as conn:
        DriverCursor(conn, sql).insert_many(
            T, COLUMNS, _rows(sql, [f"t{i}" for i in range(n)])
        )
    with engine.begin() as conn:  # the same keys again, and one new
        DriverCursor(conn, sql).insert_many(
            T, COLUMNS, _rows(sql, ["t0", "t1", "new"]), " ON CONFLICT DO NOTHING"
        )
    with db.engine.connect() as conn:
        got = conn.execute(select(T)).mappings().all()
    assert len(got) == n + 1
    last = next(r for r in got if r["transaction_id"] == f"t{n - 1}")
    assert last["features"] == _row("x")["features"]
    assert last["event_time"] == _row("x")["event_time"]


def test_named_parameters_reach_the_driver_in_placeholder_order(
    db: Database, engine: Engine
) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    statement, names = sql.sql("SELECT :b AS b, :a AS a, :b AS again")
    assert names == ("b", "a", "b")
    assert ":" not in statement
    with engine.connect() as conn:
        cursor = DriverCursor(conn, sql)
        row = cursor.execute(
            "SELECT :b AS b, :a AS a, :b AS again", {"a": 1, "b": 2}
        ).fetchone()
    assert tuple(row) == (2, 1, 2)


def _written(db: Database, direct: bool, sql: DriverSQL) -> list[Any]:
    """Every row written by one mode: bulk (with and without a suffix), then
    statement by statement, read back through Core and then through the cursor."""
    tids = [f"t{i}" for i in range(ROWS_PER_INSERT + 3)]
    with db.engine.execution_options(**{DIRECT: direct}).begin() as conn:
        cursor = DriverCursor(conn, sql)
        cursor.insert_many(T, COLUMNS, _rows(sql, tids))
        cursor.insert_many(
            T, COLUMNS, _rows(sql, ["t0", "u1"]), " ON CONFLICT DO NOTHING"
        )
        insert = f"INSERT INTO {T.name} ({', '.join(COLUMNS)}) VALUES " + (
            "(" + ", ".join(f":{c}" for c in COLUMNS) + ")"
        )
        cursor.execute(
            insert, dict(zip(COLUMNS, _rows(sql, ["single"])[0], strict=True))
        )
        read = cursor.execute(
            f"SELECT transaction_id, features FROM {T.name} "
            "WHERE namespace = :ns ORDER BY transaction_id",
            {"ns": "ns"},
        )
        assert read is not None
        fetched = [tuple(r) for r in cursor.fetchall()]
    with db.engine.begin() as conn:
        rows = conn.execute(select(T).order_by(T.c.transaction_id)).all()
        conn.execute(delete(T))
    return [tuple(r) for r in rows] + fetched


def test_the_same_rows_with_the_bypass_on_and_off(db: Database) -> None:
    sql = DriverSQL(db.engine.dialect, [T])
    paths: list[bool] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def path(_c: Any, _k: Any, _s: str, _p: Any, context: Any, _m: bool) -> None:
        paths.append(context is None)  # no execution context: the bypass

    on = _written(db, True, sql)
    on_paths = set(paths)
    paths.clear()
    off = _written(db, False, sql)
    event.remove(db.engine, "before_cursor_execute", path)

    def without_created_at(rows: list[Any]) -> list[Any]:
        index = COLUMNS.index("created_at")
        return [
            r[:index] + r[index + 1 :] if len(r) == len(COLUMNS) else r for r in rows
        ]

    assert len(on) == ROWS_PER_INSERT + 5 + ROWS_PER_INSERT + 5
    assert without_created_at(on) == without_created_at(off)
    assert True in on_paths
    assert set(paths) == {False}


def test_the_setting_reaches_the_engines(tmp_path: Any) -> None:
    db = Database(f"sqlite:///{tmp_path}/x.db", driver_cursor=False)
    try:
        for engine in (db.engine, db.online_engine):
            with engine.connect() as conn:
                assert conn.get_execution_options()[DIRECT] is False
    finally:
        db.dispose()
