"""Database plumbing: migrations match the models, Entra tokens as PostgreSQL passwords,
SQLite's BEGIN IMMEDIATE for read-then-write transactions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from shared.db.models import Base
from shared.db.partitions import include_name
from shared.db.session import Database


def test_migrations_create_exactly_the_models(db: Database) -> None:
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], diff


def test_entra_token_becomes_the_connection_password(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Token:
        token = "entra-access-token"

    scopes: list[str] = []

    class FakeCredential:
        def get_token(self, scope: str) -> Token:
            scopes.append(scope)
            return Token()

    import azure.identity

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", FakeCredential)
    db = Database(pg_url, entra_auth=True)
    seen: list[Any] = []
    # runs after the token hook: records what the driver will be called with
    event.listen(db.engine, "do_connect", lambda *a: seen.append(a[3].get("password")))
    try:
        db.ping()  # trust auth on the test server accepts any password
    finally:
        db.dispose()
    assert seen == ["entra-access-token"]
    assert scopes == ["https://ossrdbms-aad.database.windows.net/.default"]


@pytest.mark.parametrize("durable", [False, True])
def test_the_postgresql_online_engine_plans_once(pg_url: str, durable: bool) -> None:
    """The scoring path's engine: generic plans, asynchronous commits unless durable
    ones are asked for, no ping per checkout whatever the commit (a dropped
    connection costs a retry instead); the main engine keeps PostgreSQL's defaults."""
    db = Database(pg_url, online_durable_commit=durable)
    commit = "on" if durable else "off"
    try:
        assert db.online_engine.pool._pre_ping is False
        assert db.engine.pool._pre_ping is True
        with db.online_engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == (
                "force_generic_plan"
            )
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == (
                commit
            )
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "auto"
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    finally:
        db.dispose()


def test_sqlite_bulk_pages_last_for_the_bulk_transactions_only(
    sqlite_db: Database,
) -> None:
    """A larger page cache for a batch's transaction, the connection's own size back
    afterwards (a large cache on every connection slowed single transactions)."""
    from sqlalchemy import text

    from shared.db.session import SQLITE_BULK_CACHE_KIB, sqlite_bulk_pages

    def cache_size(conn: Any) -> int:
        return int(
            conn.connection.driver_connection.execute("PRAGMA cache_size").fetchone()[0]
        )

    with sqlite_db.engine.connect() as conn:
        before = cache_size(conn)
        assert before != -SQLITE_BULK_CACHE_KIB
        with sqlite_bulk_pages(conn):
            with conn.begin():
                assert cache_size(conn) == -SQLITE_BULK_CACHE_KIB
                conn.execute(text("CREATE TABLE bulk_probe (x INTEGER)"))
            assert cache_size(conn) == -SQLITE_BULK_CACHE_KIB
        assert cache_size(conn) == before
        with pytest.raises(RuntimeError), sqlite_bulk_pages(conn):
            raise RuntimeError("a failed batch")
        assert cache_size(conn) == before
        assert conn.execute(text("SELECT count(*) FROM bulk_probe")).scalar_one() == 0


def test_sqlite_immediate_transactions_take_the_write_lock_first(
    sqlite_db: Database,
) -> None:
    statements: list[str] = []  # as SQLite runs them (BEGIN goes to the driver)
    with sqlite_db.engine.connect().execution_options(sqlite_begin="immediate") as conn:
        conn.connection.driver_connection.set_trace_callback(statements.append)
        with conn.begin():
            conn.exec_driver_sql("SELECT 1")
    with sqlite_db.engine.connect() as conn:
        conn.connection.driver_connection.set_trace_callback(statements.append)
        with conn.begin():
            conn.exec_driver_sql("SELECT 1")
    assert [s for s in statements if s.startswith("BEGIN")] == [
        "BEGIN IMMEDIATE",
        "BEGIN",
    ]


@pytest.mark.slow
def test_sqlite_write_turn_excludes_threads_and_processes(tmp_path: Path) -> None:
    """Writers queue on the write turn, not in SQLite's sleeping busy handler; it is
    re-entrant in a thread and exclusive across threads and worker processes."""
    import subprocess
    import sys
    import threading
    import time

    from shared.db.session import SqliteWriteTurn

    url = f"sqlite:///{tmp_path}/app.db"
    turn = SqliteWriteTurn(url)
    with turn, turn:  # re-entrant
        got = threading.Event()

        def other() -> None:
            with turn:
                got.set()

        worker = threading.Thread(target=other)
        worker.start()
        assert not got.wait(0.2), "another thread entered while the turn was held"
    assert got.wait(5)
    worker.join()

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from shared.db.session import SqliteWriteTurn\n"
            f"t = SqliteWriteTurn({url!r})\n"
            "with t:\n    print('held', flush=True); time.sleep(0.6)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    with turn:
        waited = time.monotonic() - started
    holder.wait(10)
    assert waited > 0.3, "the other process's turn was not respected"


def test_the_writers_own_checkpoints_keep_the_wal_small(tmp_path: Path) -> None:
    """Without the guard's rounds, SQLite's own checkpoints (run by the committing
    writer) restart the WAL under steady writes: it stays near its 1,000-page bound
    instead of the ~30 MB of 3,000 writes, with a TRUNCATE in the guard never needed."""
    db = Database(f"sqlite:///{tmp_path}/wal.db")
    assert db._checkpointer is not None
    db._checkpointer.stop()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
    wal = tmp_path / "wal.db-wal"
    largest = 0
    try:
        for _ in range(3000):
            with db.writing(), db.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(6000))")
            largest = max(largest, wal.stat().st_size)
        assert largest < 8 * 1024 * 1024, largest
    finally:
        db.dispose()


@pytest.mark.slow
def test_the_wal_is_emptied_under_steady_writes(tmp_path: Path) -> None:
    """PASSIVE checkpoints alone let the WAL grow for as long as writes never pause
    (4.7 GB in six minutes of /predict at 200/s); past its bound the checkpointer
    empties it inside the write turn, and no write is lost."""
    import threading

    from shared.db.session import WalCheckpointer

    db = Database(f"sqlite:///{tmp_path}/wal.db")
    assert db._checkpointer is not None
    db._checkpointer.stop()  # rounds are driven here
    checkpointer = WalCheckpointer(
        db.engine, db.writing, interval=3600, restart_bytes=512 * 1024
    )
    checkpointer.stop()
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
    wal = tmp_path / "wal.db-wal"
    writes = 3000
    done = threading.Event()

    def write() -> None:
        for _ in range(writes):
            with db.writing(), db.engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(6000))")
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    largest = 0
    while not done.is_set():
        checkpointer.checkpoint()
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
    writer.join()
    try:
        assert checkpointer.truncations > 0
        # 3,000 writes of two or three pages each: about 30 MB of WAL if never reset
        assert largest < 8 * 1024 * 1024
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == writes
    finally:
        db.dispose()
