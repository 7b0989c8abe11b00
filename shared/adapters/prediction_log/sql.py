"""The ``predictions`` table on SQLite and PostgreSQL: the statements are the same
Core or compiled per dialect, so one adapter serves both (``insert_for`` is only
run by PostgreSQL's one-call path: SQLite casts to an unknown type as a number)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.engine import Dialect

from shared.db.driver import DriverCursor, DriverSQL
from shared.db.models import Prediction
from shared.db.session import Database

TABLE = cast(Table, Prediction.__table__)
_LABEL_CHUNK = 500
_REPAIR_CHUNK = 500


class SqlPredictionTable:
    """A ``PredictionSink`` on the app database: rows as ``PredictionRecord.to_row``
    gives them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._engine = db.engine.execution_options(sqlite_begin="immediate")
        self._sql = DriverSQL(db.engine.dialect, [TABLE])

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` in ``conn``'s open transaction (the caller commits)."""
        if not rows:
            return
        cursor = DriverCursor(conn, self._sql)
        for columns, group in self._bound(rows).items():
            cursor.insert_many(TABLE, columns, group)

    def insert_for(self, rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
        """``rows`` as one ``INSERT … SELECT`` with each value cast to its column's
        type (an ``InsertWith``'s form, for a caller that runs it inside its own
        statement). The rows must have the same columns."""
        ((columns, bound),) = self._bound(rows).items()
        values = [value for row in bound for value in row]
        return _insert_select(self._sql.dialect, columns, len(bound)), values

    def insert_missing(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert those of ``rows`` whose id has no row yet; how many were."""
        added = 0
        for start in range(0, len(rows), _REPAIR_CHUNK):
            chunk = rows[start : start + _REPAIR_CHUNK]
            ids = [row["id"] for row in chunk]
            with self.db.writing(), self._engine.begin() as conn:
                stored = set(
                    conn.execute(select(TABLE.c.id).where(TABLE.c.id.in_(ids)))
                    .scalars()
                    .all()
                )
                missing = [row for row in chunk if row["id"] not in stored]
                if missing:
                    cursor = DriverCursor(conn, self._sql)
                    for columns, group in self._bound(missing).items():
                        cursor.insert_many(TABLE, columns, group)
            added += len(missing)
        return added

    def _bound(
        self, rows: Sequence[dict[str, Any]]
    ) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
        """The rows as the driver takes them, grouped by their columns, bound column by
        column (a value repeated through a column, a batch's model, is bound once)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        out: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for names, group in groups.items():
            columns = []
            for name in names:
                values = [row[name] for row in group]
                bind = self._sql.bind(TABLE, name)
                first = values[0]
                if first is not None and all(v is first for v in values):
                    columns.append([bind(first)] * len(values))
                else:
                    columns.append([None if v is None else bind(v) for v in values])
            out[names] = list(zip(*columns, strict=True))
        return out


@functools.cache
def _insert_select(dialect: Dialect, columns: tuple[str, ...], rows: int) -> str:
    types = [TABLE.c[name].type.compile(dialect) for name in columns]
    casts = [", ".join(f"CAST(:v AS {t})" for t in types)] * rows
    selects = " UNION ALL ".join(f"SELECT {row}" for row in casts)
    body = selects if rows == 1 else f"SELECT * FROM ({selects}) AS r"
    return f"INSERT INTO {TABLE.name} ({', '.join(columns)}) {body}"


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def set_labels(
    db: Database,
    by_txn: Mapping[str, bool],
    by_id: Mapping[uuid.UUID, bool],
) -> tuple[set[uuid.UUID], set[str], set[uuid.UUID], dict[str, bool]]:
    """Set ``actual_label`` by transaction id, then by prediction id (so an id wins), in
    one transaction: the rows touched, the transaction ids and prediction ids matched,
    and the label each touched row's transaction id got (the later one wins)."""
    touched: set[uuid.UUID] = set()
    matched: dict[str, set[Any]] = {"id": set(), "transaction_id": set()}
    labelled: dict[str, bool] = {}
    engine = db.engine.execution_options(sqlite_begin="immediate")
    with db.writing(), engine.begin() as conn:
        for column, labels in (("transaction_id", by_txn), ("id", by_id)):
            key = TABLE.c[column]
            for value in (False, True):
                keys = [k for k, v in labels.items() if v is value]
                for part in _chunks(keys, _LABEL_CHUNK):
                    result = conn.execute(
                        update(TABLE)
                        .where(key.in_(part))
                        .values(actual_label=value)
                        .returning(TABLE.c.id, key, TABLE.c.transaction_id)
                    )
                    for row_id, matched_key, transaction_id in result:
                        touched.add(row_id)
                        matched[column].add(matched_key)
                        labelled[transaction_id] = value
    return touched, matched["transaction_id"], matched["id"], labelled


def count_rows(db: Database, model_id: uuid.UUID | None = None) -> int:
    """Rows in ``predictions`` (of one model, if given)."""
    stmt = select(func.count()).select_from(TABLE)
    if model_id is not None:
        stmt = stmt.where(TABLE.c.model_id == model_id)
    with db.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
