"""Hot statements run straight on the DBAPI cursor inside a SQLAlchemy transaction.

On this project's scoring path SQLAlchemy Core costs 30-70 µs per ``execute`` on top
of the driver's own 10 µs (cache key, parameter processing, result wrapping), and a
scored transaction runs four or five statements. ``DriverSQL`` keeps what Core adds
that matters: the column types' bind processors (so values are stored exactly as Core
stores them), the dialect's placeholder style, and Core's error handling (exceptions
come out as ``sqlalchemy.exc`` errors and a dropped connection is invalidated, as if
Core had run the statement). Transactions stay SQLAlchemy's: ``Connection.begin()``
and commit, with Core statements mixed in where speed does not matter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, LargeBinary, Table
from sqlalchemy.engine import Dialect

_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")
Params = Mapping[str, Any]
Processor = Callable[[Any], Any]


class DriverSQL:
    """Statements of one dialect, written with ``:name`` placeholders, and the bind
    processing of the columns they write (reads take the driver's values as they are:
    bytes, numbers and strings here).

    Statements reach the driver with positional placeholders: SQLite looks a named
    parameter up by a linear scan of the statement's names, so binding a multi-row
    statement of n named parameters costs O(n²) (measured: 17,000 head upserts in
    500-row statements took 639 ms named, 61 ms positional)."""

    def __init__(self, dialect: Dialect, tables: Iterable[Table]) -> None:
        self.dialect = dialect
        self.mark = "%s" if dialect.name == "postgresql" else "?"  # psycopg, sqlite3
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
    """The DBAPI cursor of ``conn``'s current transaction; errors go through Core's
    handler (wrapped in ``sqlalchemy.exc``, connection invalidated on disconnect) and
    Core's before/after cursor events fire (with no execution context)."""

    def __init__(self, conn: Connection, sql: DriverSQL) -> None:
        self.conn = conn
        self.sql = sql
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def execute(self, text: str, params: Params | Sequence[Any]) -> Any:
        """``params`` by name, or already in placeholder order (a sequence)."""
        statement, names = self.sql.sql(text)
        self._run(statement, _positional(params, names), many=False)
        return self.cursor

    def _run(self, statement: str, params: Any, *, many: bool) -> None:
        self._call(statement, params, many, self._execute)

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
            # Core's cursor events still fire (tracing, tests that simulate outages)
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

    def insert_many(
        self,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        suffix: str = "",
    ) -> None:
        """Insert positional rows (values in ``columns`` order, bound already), the
        fastest way each driver has (measured here):

        - SQLite: multi-row ``INSERT … VALUES`` statements. ``executemany`` lets go of
          the GIL around every row's step, and with another thread busy each row then
          waits for it to come back: 30,000 event rows took 83 ms alone and 7.3 s
          beside one busy thread that way, 228 ms in 500-row statements.
        - PostgreSQL: ``COPY`` (16,000 event rows in 55 ms, against 110 ms with
          psycopg's pipelined ``executemany`` and 220 ms in multi-row statements), or
          ``executemany`` where a ``suffix`` (ON CONFLICT) rules COPY out."""
        if not rows:
            return
        names = ", ".join(columns)
        if self.sql.dialect.name == "postgresql":
            if suffix:
                marks = ", ".join(["%s"] * len(columns))
                statement = (
                    f"INSERT INTO {table.name} ({names}) VALUES ({marks}){suffix}"
                )
                self._call(statement, rows, True, self._execute)
            else:
                statement = f"COPY {table.name} ({names}) FROM STDIN"
                self._call(statement, rows, True, self._copy)
            return
        width = len(columns)
        per = max(1, min(ROWS_PER_INSERT, MAX_PARAMS // width))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            statement = _insert_rows_sql(
                table.name, tuple(columns), len(chunk), suffix, self.sql.mark
            )
            self._run(statement, [v for row in chunk for v in row], many=False)

    def fetchall(self) -> list[Any]:
        return list(self.cursor.fetchall())

    def fetchone(self) -> Any:
        return self.cursor.fetchone()


ROWS_PER_INSERT = 500
MAX_PARAMS = 32_766  # SQLite's limit of parameters per statement (PostgreSQL: 65,535)


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
