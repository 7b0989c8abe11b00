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
from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    Text,
    and_,
    case,
    func,
    select,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect

from shared.adapters.feature_log import vectors
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


def _columns(
    rows: Sequence[Any], names: Sequence[str] | None, layout: Sequence[str] | None
) -> Columns:
    packed = [vectors.fits(r.vector, layout) for r in rows]
    dicts = [{} if p else _dict(r.features) for r, p in zip(rows, packed, strict=True)]
    if names is None:
        seen: dict[str, None] = dict.fromkeys(layout or ()) if any(packed) else {}
        for d in dicts:
            seen.update(dict.fromkeys(d))
        names = sorted(seen)
    n = len(rows)
    if layout is not None and all(packed):
        features = vectors.unpack([r.vector for r in rows], layout, names)
    else:
        features = matrix(dicts, names)
        if layout is not None and any(packed):
            at = np.flatnonzero(packed)
            fitting = [rows[int(i)].vector for i in at]
            features[at] = vectors.unpack(fitting, layout, names)
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
        features=features,
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
    layout: Sequence[str] | None = None,
) -> Iterator[Columns]:
    """The model's rows in ``[start, end)`` in ``(created_at, id)`` order, a chunk at a
    time; every feature found when ``names`` is None. ``layout`` is the model's feature
    order, which its rows' packed input vectors follow (``vectors``): a row whose vector
    fits is read from it, the others from their JSON, fetched as text and parsed here.
    """
    features: ColumnElement[Any] = sql_cast(TABLE.c.input_features, Text)
    if layout:  # the JSON only where the vector cannot stand in for it
        fitting = func.length(TABLE.c.input_vector) == len(layout) * vectors.WIDTH
        features = case((fitting, None), else_=features)
    stmt = (
        select(
            sql_cast(TABLE.c.id, Text).label("id"),
            TABLE.c.created_at,
            features.label("features"),
            TABLE.c.input_vector.label("vector"),
            TABLE.c.fraud_score,
            TABLE.c.latency_ms,
        )
        .where(in_range(model_id, start, end))
        .order_by(TABLE.c.created_at, TABLE.c.id)
    )
    result = conn.execution_options(yield_per=CHUNK).execute(stmt)
    for part in result.partitions(CHUNK):
        yield _columns(part, names, layout)


def labels(
    conn: Connection, model_id: uuid.UUID, start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """The labelled rows of the window: their ids' bytes (n, 16) and labels (1.0/0.0),
    read through the partial index of labelled rows as one string of 33 characters a
    row (the id's hex, the label): a row object per labelled row cost seconds."""
    sql = _driver_sql(conn.dialect)
    cursor = DriverCursor(conn, sql)
    cursor.execute(
        _LABELS[conn.dialect.name],
        {
            "m": sql.bind(TABLE, "model_id")(model_id),
            "s": sql.bind(TABLE, "created_at")(start),
            "e": sql.bind(TABLE, "created_at")(end),
        },
    )
    text = cursor.fetchone()[0] or ""
    packed = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(-1, 33)
    nibbles = _NIBBLE[packed[:, :32]]
    ids = (nibbles[:, 0::2] << 4) | nibbles[:, 1::2]
    return ids, (packed[:, 32] - ord("0")).astype(np.float64)


_WHERE = (
    "FROM predictions WHERE model_id = :m AND created_at >= :s AND created_at < :e "
    "AND actual_label IS NOT NULL"
)
_LABELS = {
    "sqlite": f"SELECT group_concat(id || actual_label, '') {_WHERE}",
    "postgresql": "SELECT string_agg(replace(CAST(id AS TEXT), '-', '') || "
    f"CAST(CAST(actual_label AS INTEGER) AS TEXT), '') {_WHERE}",
}
_NIBBLE = np.zeros(256, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _NIBBLE[ord(chr(_c).upper())] = _i


@functools.cache
def _driver_sql(dialect: Dialect) -> DriverSQL:
    return DriverSQL(dialect, [TABLE])


def first_at(
    conn: Connection, model_id: uuid.UUID, start: datetime, end: datetime
) -> datetime | None:
    """The earliest ``created_at`` of the model's rows in ``[start, end)``."""
    stmt = select(func.min(TABLE.c.created_at)).where(in_range(model_id, start, end))
    value = conn.execute(stmt).scalar()
    return None if value is None else cast(datetime, value)


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
