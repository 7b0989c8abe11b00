"""Hot statements of the scoring path, written once for the driver and run on the DBAPI
cursor inside a SQLAlchemy transaction, or through Core.

The bypass (``SH_DB_DRIVER_CURSOR``, on by default; the engine option ``DIRECT``) skips
Core's per-statement work (cache key, execution context, result wrapping) and keeps what
matters: the column types' bind processors (``DriverSQL.bind``: values are stored
exactly as Core stores them), the dialect's placeholder style, Core's error handling
(``sqlalchemy.exc`` errors, a dropped connection invalidated) and Core's cursor events.
Off, the same statements go through ``Connection.exec_driver_sql``. Transactions stay
SQLAlchemy's either way. ``bench/bench_driver_cursor.py`` measures the two apart;
``tests/db/test_driver.py`` checks they write and read the same rows.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, LargeBinary, Table
from sqlalchemy.engine import Dialect

DIRECT = "sh_driver_cursor"  # engine execution option: True runs on the DBAPI cursor
_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")
Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


# -- running a statement: on the DBAPI cursor, or through Core -----------------------------


class _Runner(Protocol):
    can_copy: bool

    def run(self, statement: str, params: Any, many: bool) -> Any:
        """Execute (``many``: once per row of ``params``); something to fetch from."""
        ...

    def copy(self, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...


class _OnCursor:
    """The DBAPI cursor of the connection's current transaction; errors go through
    Core's handler and Core's before/after cursor events fire (no execution context)."""

    can_copy = True

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def run(self, statement: str, params: Any, many: bool) -> Any:
        self._call(statement, params, many, self._execute)
        return self.cursor

    def copy(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        self._call(statement, rows, True, self._copy)

    def _execute(self, statement: str, params: Any, many: bool) -> None:
        if many:
            self.cursor.executemany(statement, params)
        else:
            self.cursor.execute(statement, params)

    def _copy(self, statement: str, rows: Any, _many: bool) -> None:
        with self.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def _call(
        self,
        statement: str,
        params: Any,
        many: bool,
        run: Callable[[str, Any, bool], None],
    ) -> None:
        conn = self.conn
        try:
            if conn._has_events or conn.engine._has_events:
                for fn in conn.dispatch.before_cursor_execute:
                    statement, params = fn(
                        conn, self.cursor, statement, params, None, many
                    )
            run(statement, params, many)
            if conn._has_events or conn.engine._has_events:
                conn.dispatch.after_cursor_execute(
                    conn, self.cursor, statement, params, None, many
                )
        except Exception as exc:  # noqa: BLE001 - re-raised by Core's handler
            conn._handle_dbapi_exception(exc, statement, params, self.cursor, None)


class _ThroughCore:
    """``Connection.exec_driver_sql``: the same statements, Core's whole path."""

    can_copy = False

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(self, statement: str, params: Any, many: bool) -> Any:
        return self.conn.exec_driver_sql(
            statement, [tuple(p) for p in params] if many else tuple(params)
        )

    def copy(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError("COPY runs on the DBAPI cursor only")


# -- inserting many rows: one implementation per database ---------------------------------


class _BulkInsert(Protocol):
    mark: str  # the driver's positional placeholder

    def insert_many(
        self,
        runner: _Runner,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
        suffix: str,
    ) -> None: ...


ROWS_PER_INSERT = 500
MAX_PARAMS = 32_766  # SQLite's limit of parameters per statement


class SqliteBulkInsert:
    """Multi-row ``INSERT … VALUES`` statements: ``executemany`` releases the GIL
    around every row's step, and beside a busy thread each row then waits to get it
    back (measured in docs/benchmarks.md)."""

    mark = "?"

    def insert_many(
        self,
        runner: _Runner,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
        suffix: str,
    ) -> None:
        per = max(1, min(ROWS_PER_INSERT, MAX_PARAMS // len(columns)))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            statement = _insert_rows_sql(table, columns, len(chunk), suffix, self.mark)
            runner.run(statement, [v for row in chunk for v in row], False)


class PostgresBulkInsert:
    """``COPY`` on the DBAPI cursor; ``executemany`` (psycopg pipelines it) where a
    ``suffix`` (ON CONFLICT) rules COPY out, or through Core, which has no COPY."""

    mark = "%s"

    def insert_many(
        self,
        runner: _Runner,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Sequence[Any]],
        suffix: str,
    ) -> None:
        names = ", ".join(columns)
        if suffix or not runner.can_copy:
            runner.run(
                _insert_rows_sql(table, columns, 1, suffix, self.mark), rows, True
            )
        else:
            runner.copy(f"COPY {table} ({names}) FROM STDIN", rows)


_BULK: dict[str, type[_BulkInsert]] = {
    "sqlite": SqliteBulkInsert,
    "postgresql": PostgresBulkInsert,
}


# -- the statements and the cursor the adapters use ---------------------------------------


class DriverSQL:
    """Statements of one dialect, written with ``:name`` placeholders, and the bind
    processing of the columns they write (reads take the driver's values as they are:
    bytes, numbers and strings here).

    Statements reach the driver with positional placeholders: SQLite looks a named
    parameter up by a linear scan of the statement's names, so binding a multi-row
    statement of n named parameters costs O(n²)."""

    def __init__(self, dialect: Dialect, tables: Iterable[Table]) -> None:
        self.dialect = dialect
        self.bulk: _BulkInsert = _BULK[dialect.name]()
        self.mark = self.bulk.mark
        self._bind: dict[str, dict[str, Processor]] = {}
        for table in tables:
            binds: dict[str, Processor] = {}
            for column in table.columns:
                if isinstance(column.type, LargeBinary):
                    continue  # both drivers take bytes as they are
                impl = column.type.dialect_impl(dialect)
                if (bind := impl.bind_processor(dialect)) is not None:
                    binds[column.name] = bind
            self._bind[table.name] = binds

    @functools.cache  # noqa: B019 - one instance per database, a handful of statements
    def sql(self, text: str) -> tuple[str, tuple[str, ...]]:
        """``text`` with the driver's positional placeholders, and the parameter names
        in the order the placeholders take them."""
        names = tuple(_NAMED_PARAM.findall(text))
        return _NAMED_PARAM.sub(lambda _: self.mark, text), names

    def bind(self, table: Table, column: str) -> Processor:
        """The bind processing of one column (identity if it has none), for callers
        that build positional rows themselves."""
        return self._bind[table.name].get(column, _identity)


class DriverCursor:
    """Runs ``DriverSQL`` statements in ``conn``'s current transaction: on the DBAPI
    cursor, or through Core when the engine's ``DIRECT`` option is off."""

    def __init__(self, conn: Connection, sql: DriverSQL) -> None:
        self.conn = conn
        self.sql = sql
        direct = conn.get_execution_options().get(DIRECT, True)
        self._runner: _Runner = _OnCursor(conn) if direct else _ThroughCore(conn)
        self._last: Any = None

    def execute(self, text: str, params: Params | Sequence[Any]) -> Any:
        """``params`` by name, or already in placeholder order (a sequence); returns
        something to fetch the rows from."""
        statement, names = self.sql.sql(text)
        self._last = self._runner.run(statement, _positional(params, names), False)
        return self._last

    def insert_many(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> None:
        """Insert positional rows (values in ``columns`` order, bound already), the
        fastest way the database has."""
        if rows:
            self.sql.bulk.insert_many(
                self._runner, table.name, tuple(columns), rows, suffix
            )

    def fetchall(self) -> list[Any]:
        return list(self._last.fetchall())

    def fetchone(self) -> Any:
        return self._last.fetchone()


@functools.cache
def _insert_rows_sql(
    table: str, columns: tuple[str, ...], n: int, suffix: str, mark: str
) -> str:
    row = "(" + ", ".join([mark] * len(columns)) + ")"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        + ", ".join([row] * n)
        + suffix
    )


def _identity(value: Any) -> Any:
    return value


def _positional(params: Params | Sequence[Any], names: Sequence[str]) -> Sequence[Any]:
    if isinstance(params, Mapping):
        return tuple([params[n] for n in names])
    return params
