"""Engine and session handling for SQLite (embedded) and PostgreSQL (Azure)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from shared.db.driver import DIRECT

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a job writes; foreign keys make CASCADE real.
    # isolation_level=None hands BEGIN to SQLAlchemy (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # SQLite's own checkpoints stay on (the committing writer, every 1,000 pages): run
    # from another thread alone they never let the WAL restart under steady writes
    cursor.close()


SQLITE_BULK_CACHE_KIB = 65536


@contextmanager
def sqlite_bulk_pages(conn: Connection) -> Iterator[None]:
    """SQLite: a 64 MB page cache on this connection for the bulk transactions begun
    inside, then its own size back (outside any transaction: shrinking it inside one
    would spill its dirty pages). A batch's head upserts and event rows land on pages
    all over the entity tables' indexes, and with the default 2 MB most were read
    again. It stays off the other transactions: SQLite drops a connection's whole cache
    whenever another connection has written, so a large cache on every connection made
    single scored transactions slower (docs/benchmarks.md). No-op on other databases."""
    if conn.dialect.name != "sqlite":
        yield
        return
    # on the driver's connection: through Core, a statement would begin a transaction
    driver = conn.connection.driver_connection
    assert driver is not None
    (size,) = driver.execute("PRAGMA cache_size").fetchone()
    driver.execute(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size={int(size)}")


class SqliteWriteTurn:
    """SQLite has one writer at a time. Writers of every thread and worker process
    queue here (a thread lock, then an exclusive ``flock`` on a file next to the
    database) instead of in SQLite's busy handler, which sleeps in growing steps up to
    100 ms and turned bursts of concurrent writes into a long latency tail."""

    def __init__(self, url: str) -> None:
        self.path = url.split("///", 1)[-1] + ".writelock"
        self._lock = threading.RLock()
        self._depth = threading.local()
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._lock.acquire()
        depth = getattr(self._depth, "n", 0)
        if depth == 0:
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._lock.release()
                raise
        self._depth.n = depth + 1

    def __exit__(self, *_: object) -> None:
        self._depth.n -= 1
        try:
            if self._depth.n == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()


class WalCheckpointer:
    """A guard against a WAL that SQLite's own checkpoints cannot restart: readers
    that never pause keep it growing. Every ``interval`` seconds a PASSIVE checkpoint
    runs on its own connection; past ``restart_bytes`` a TRUNCATE checkpoint runs
    inside the app's write turn (``write_turn``), writers waiting while it empties
    the WAL. Under ordinary load the writers' own checkpoints keep the WAL far below
    the bound and the guard never stalls them."""

    def __init__(
        self,
        engine: Engine,
        write_turn: Callable[[], AbstractContextManager[None]],
        interval: float = 1.0,
        restart_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.engine = engine
        self.write_turn = write_turn
        self.interval = interval
        self.restart_bytes = restart_bytes
        self.truncations = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="sqlite-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except Exception:  # noqa: BLE001 - next round retries; never kill the thread
                log.debug("WAL checkpoint failed", exc_info=True)

    def checkpoint(self) -> None:
        """One round: PASSIVE, then TRUNCATE if the WAL is still over its bound."""
        with self.engine.connect() as conn:
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            _, frames, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            if frames * page > self.restart_bytes:
                with self.write_turn():
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                self.truncations += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _sqlite_begin(conn: Connection) -> None:
    """BEGIN IMMEDIATE for connections that will write what they read (the online
    feature store), plain deferred BEGIN otherwise."""
    immediate = conn.get_execution_options().get("sqlite_begin") == "immediate"
    # on the DBAPI connection: through exec_driver_sql this cost more than the rest of
    # a scoring transaction's statements (bench/bench_online_store.py)
    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        "BEGIN IMMEDIATE" if immediate else "BEGIN"
    )


_ENTRA_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"


def _entra_password(
    _dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]
) -> None:
    """Azure Database for PostgreSQL with managed identity: a fresh Entra access token is
    the password of every new connection (tokens expire; the pool reconnects)."""
    from azure.identity import DefaultAzureCredential

    cparams["password"] = DefaultAzureCredential().get_token(_ENTRA_SCOPE).token


def json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns through orjson: several times faster than the json module on the scoring
# path (features and entity keys of every transaction); NaN is stored as null, which
# JSONB requires anyway.
_JSON_CODEC: dict[str, Any] = {
    "json_serializer": json_dumps,
    "json_deserializer": orjson.loads,
}


def make_engine(
    url: str,
    entra_auth: bool = False,
    *,
    synchronous_commit: bool = True,
    generic_plans: bool = False,
    pre_ping: bool = True,
    driver_cursor: bool = True,
) -> Engine:
    """Create an engine with settings suited to each database.

    ``synchronous_commit=False`` (PostgreSQL) makes COMMIT return before the WAL is
    flushed to disk: a server crash can lose the last fraction of a second of commits,
    never corrupt or half-apply one. SQLite in WAL mode with synchronous=NORMAL already
    behaves that way.

    ``generic_plans=True`` (PostgreSQL) plans a prepared statement once: the scoring
    path's statements are equalities on whole primary keys, whose plan cannot improve
    with the values, and PostgreSQL otherwise re-planned its state read on every call.

    ``pre_ping=False`` (PostgreSQL): no ping round trip per checkout; connections are
    recycled sooner and the caller retries once on a dropped one instead.

    ``driver_cursor`` sets the engine option ``shared.db.driver.DIRECT``: whether the
    scoring path's hot statements run on the DBAPI cursor or through Core."""
    options: dict[str, Any] = {
        "execution_options": {DIRECT: driver_cursor},
        **_JSON_CODEC,
    }
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, **options
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    server = [] if synchronous_commit else ["-c synchronous_commit=off"]
    if generic_plans:
        server.append("-c plan_cache_mode=force_generic_plan")
    connect_args = {"options": " ".join(server)} if server else {}
    pooling: dict[str, Any] = {"pool_size": 10, "max_overflow": 20}
    engine = create_engine(
        url,
        **pooling,
        pool_pre_ping=pre_ping,
        pool_recycle=1800 if pre_ping else 300,
        connect_args=connect_args,
        **options,
    )
    if entra_auth:
        event.listen(engine, "do_connect", _entra_password)
    return engine


class Database:
    """One engine and session factory per process, shared by routes, jobs and tests."""

    def __init__(
        self,
        url: str,
        entra_auth: bool = False,
        *,
        online_durable_commit: bool = False,
        driver_cursor: bool = True,
    ) -> None:
        self.url = url
        self.engine = make_engine(url, entra_auth, driver_cursor=driver_cursor)
        self._entra_auth = entra_auth
        self._driver_cursor = driver_cursor
        self._online_durable_commit = online_durable_commit
        self._online_engine: Engine | None = None
        self._engines_lock = threading.Lock()  # each scoring engine built once
        self._write_turn = (
            SqliteWriteTurn(url)
            if self.dialect == "sqlite" and ":memory:" not in url
            else None
        )
        self._checkpointer = (
            WalCheckpointer(self.engine, self.writing)
            if self.dialect == "sqlite" and ":memory:" not in url
            else None
        )
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self._write_sessionmaker = sessionmaker(
            self.engine.execution_options(sqlite_begin="immediate"),
            expire_on_commit=False,
        )

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error.

        ``write=True`` for read-then-write work that races with other writers (status
        changes, promotions): on SQLite it takes the write lock up front (BEGIN
        IMMEDIATE), where a deferred transaction would fail with "database is locked"
        when upgrading its read snapshot; PostgreSQL is unaffected."""
        with self.writing() if write else nullcontext():
            session = (self._write_sessionmaker if write else self.sessionmaker)()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the SQLite write turn around a write transaction (no-op on PostgreSQL,
        which locks rows). Re-entrant within a thread."""
        if self._write_turn is None:
            yield
            return
        with self._write_turn:
            yield

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def online_engine(self) -> Engine:
        """The engine of the scoring path's small transactions (online feature state).

        On PostgreSQL a durable commit waits for a WAL flush, longer than the whole rest
        of a scored transaction (docs/benchmarks.md). So by default these commits are
        asynchronous (see ``make_engine``); the worst case, a database crash, forgets
        the last moments of state updates, and a retried transaction is then simply
        applied again.
        ``SH_ONLINE_DURABLE_COMMIT=true`` restores durable commits. Its statements
        are planned once (generic plans, see ``make_engine``)."""
        if self.dialect != "postgresql":
            return self.engine
        if self._online_engine is None:
            with self._engines_lock:
                if self._online_engine is None:
                    self._online_engine = make_engine(
                        self.url,
                        self._entra_auth,
                        synchronous_commit=self._online_durable_commit,
                        generic_plans=True,
                        pre_ping=False,
                        driver_cursor=self._driver_cursor,
                    )
        return self._online_engine

    def dispose(self) -> None:
        """Close every pooled connection. On SQLite, first fold the WAL back into the
        database file: a WAL left behind makes the next process rebuild its index from
        the whole file before its first query (a slower cold start)."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
            try:
                with self.writing(), self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.debug("final WAL checkpoint failed", exc_info=True)
        self.engine.dispose()
        if self._online_engine is not None:
            self._online_engine.dispose()
