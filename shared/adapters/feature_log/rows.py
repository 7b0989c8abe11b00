"""Reading ``predictions`` rows as columns: what both feature log backends share (the
range queries, the JSON features turned into a float matrix, labels by id, hour keys)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import orjson
from sqlalchemy import ColumnElement, Connection, Table, Text, and_, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect

from shared.db.driver import DriverCursor, DriverSQL
from shared.db.models import Prediction

TABLE = cast(Table, Prediction.__table__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
_US = timedelta(microseconds=1)
CHUNK = 50_000


def to_ns(moment: datetime) -> int:
    """Epoch nanoseconds of an aware (or naive UTC) datetime, exact to the microsecond."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - EPOCH) // _US * 1000


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_key(moment: datetime) -> str:
    """The hour as the partition names and ``hour_expression`` spell it."""
    return hour_of(moment).strftime("%Y-%m-%dT%H")


def hour_expression(dialect: str) -> ColumnElement[str]:
    """``created_at``'s hour as ``YYYY-MM-DDTHH`` text, in SQL."""
    if dialect == "postgresql":
        utc = func.timezone("UTC", TABLE.c.created_at)
        return cast(ColumnElement[str], func.to_char(utc, 'YYYY-MM-DD"T"HH24'))
    return cast(ColumnElement[str], func.strftime("%Y-%m-%dT%H", TABLE.c.created_at))


def in_range(
    model_id: uuid.UUID, start: datetime, end: datetime
) -> ColumnElement[bool]:
    return and_(
        TABLE.c.model_id == model_id,
        TABLE.c.created_at >= start,
        TABLE.c.created_at < end,
    )


@dataclass
class Columns:
    """Rows as arrays; ``features`` holds ``names``' columns, NaN where missing."""

    ids: np.ndarray  # (n, 16) uint8: the prediction ids' bytes
    created_at_ns: np.ndarray  # int64
    scores: np.ndarray  # float64
    latency_ms: np.ndarray  # float64
    names: list[str]
    features: np.ndarray  # float32 (n, len(names))

    @property
    def rows(self) -> int:
        return len(self.created_at_ns)


def matrix(dicts: Sequence[dict[str, Any]], names: Sequence[str]) -> np.ndarray:
    """The features of each row under ``names`` as float32, NaN where absent, null or
    not a number."""
    if not names:
        return np.empty((len(dicts), 0), dtype=np.float32)
    try:
        out = np.array(
            [tuple(map(d.get, names)) for d in dicts], dtype=np.float32, ndmin=2
        )
    except (TypeError, ValueError):
        out = np.array(
            [[_number(d.get(n)) for n in names] for d in dicts],
            dtype=np.float32,
            ndmin=2,
        )
    return out.reshape(len(dicts), len(names))


def _number(value: Any) -> float:
    if isinstance(value, bool) or value is None:
        return float("nan") if value is None else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _id_bytes(texts: Sequence[str]) -> np.ndarray:
    """Ids read as text (hex, or hyphenated on PostgreSQL) as (n, 16) bytes: building
    a ``uuid.UUID`` per row costs more than the rest of a window's label read."""
    raw = bytes.fromhex("".join(texts).replace("-", ""))
    return np.frombuffer(raw, dtype=np.uint8).reshape(len(texts), 16)


def _columns(rows: Sequence[Any], names: Sequence[str] | None) -> Columns:
    dicts = [_dict(r.features) for r in rows]
    if names is None:
        seen: dict[str, None] = {}
        for d in dicts:
            seen.update(dict.fromkeys(d))
        names = sorted(seen)
    n = len(rows)
    return Columns(
        ids=_id_bytes([r.id for r in rows]),
        created_at_ns=np.fromiter(
            (to_ns(r.created_at) for r in rows), dtype=np.int64, count=n
        ),
        scores=np.array([r.fraud_score for r in rows], dtype=np.float64),
        latency_ms=np.array(
            [np.nan if r.latency_ms is None else r.latency_ms for r in rows],
            dtype=np.float64,
        ),
        names=list(names),
        features=matrix(dicts, names),
    )


def _dict(text: Any) -> dict[str, Any]:
    value = orjson.loads(text) if isinstance(text, str | bytes) else text
    return value if isinstance(value, dict) else {}


def read_rows(
    conn: Connection,
    model_id: uuid.UUID,
    start: datetime,
    end: datetime,
    names: Sequence[str] | None = None,
) -> Iterator[Columns]:
    """The model's rows in ``[start, end)`` in ``(created_at, id)`` order, a chunk at a
    time; every feature found when ``names`` is None. The JSON comes as text, parsed
    here, not by the driver."""
    stmt = (
        select(
            sql_cast(TABLE.c.id, Text).label("id"),
            TABLE.c.created_at,
            sql_cast(TABLE.c.input_features, Text).label("features"),
            TABLE.c.fraud_score,
            TABLE.c.latency_ms,
        )
        .where(in_range(model_id, start, end))
        .order_by(TABLE.c.created_at, TABLE.c.id)
    )
    result = conn.execution_options(yield_per=CHUNK).execute(stmt)
    for part in result.partitions(CHUNK):
        yield _columns(part, names)


def labels(
    conn: Connection, model_id: uuid.UUID, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled rows of the window: their ids' bytes (n, 16) and labels (1.0/0.0),
    read through the partial index of labelled rows."""
    sql = _driver_sql(conn.dialect)
    cursor = DriverCursor(conn, sql)
    cursor.execute(
        _LABELS,
        {
            "m": sql.bind(TABLE, "model_id")(model_id),
            "s": sql.bind(TABLE, "created_at")(start),
            "e": sql.bind(TABLE, "created_at")(end),
        },
    )
    rows = cursor.fetchall()  # the driver's tuples: Core's row objects cost more
    if not rows:
        return np.empty((0, 16), dtype=np.uint8), np.empty(0, dtype=np.float64)
    ids, values = zip(*rows, strict=True)
    return _id_bytes(ids), np.array(values, dtype=np.float64)


_LABELS = (
    "SELECT CAST(id AS TEXT), CAST(actual_label AS INTEGER) FROM predictions "
    "WHERE model_id = :m AND created_at >= :s AND created_at < :e "
    "AND actual_label IS NOT NULL"
)


@functools.cache
def _driver_sql(dialect: Dialect) -> DriverSQL:
    return DriverSQL(dialect, [TABLE])


def count(conn: Connection, model_id: uuid.UUID, start: datetime, end: datetime) -> int:
    stmt = select(func.count()).select_from(TABLE).where(in_range(model_id, start, end))
    return int(conn.execute(stmt).scalar_one())


def hour_counts(
    conn: Connection, model_id: uuid.UUID, start: datetime, end: datetime
) -> dict[str, int]:
    """Rows per hour key in ``[start, end)``."""
    hour = hour_expression(conn.dialect.name).label("hour")
    stmt = (
        select(hour, func.count()).where(in_range(model_id, start, end)).group_by(hour)
    )
    return {str(h): int(n) for h, n in conn.execute(stmt)}
