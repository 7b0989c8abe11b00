"""Logged rows between their three forms: the table's chunks (``rows.Columns``), Arrow
tables as the segments hold them, and the parts a window is assembled from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shared.adapters.feature_log.rows import HOUR, Columns, hour_key, hour_of, to_ns
from shared.ports import LoggedWindow

FEATURE = "f."  # a feature's column in a segment: f.<name>
BASE = ("id", "created_at_ns", "fraud_score", "latency_ms")


@dataclass
class Part:
    """Rows of one source (a segment or the table) with the requested features."""

    hour: str | None
    ids: np.ndarray
    created_at_ns: np.ndarray
    scores: np.ndarray
    latency_ms: np.ndarray
    features: list[Any]  # per requested name: an array (numpy, Arrow) or None (NaN)

    @property
    def rows(self) -> int:
        return len(self.created_at_ns)


def _fill(target: np.ndarray, column: Any) -> None:
    """Copy one feature's values into ``target``, Arrow chunk by chunk (no concatenated
    copy first); nulls and an absent column as NaN."""
    if column is None:
        target[:] = np.nan
    elif isinstance(column, pa.ChunkedArray):
        at = 0
        for chunk in column.chunks:
            target[at : at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
            at += len(chunk)
    else:
        target[:] = column


def _arrow(columns: Columns) -> pa.Table:
    n = columns.rows
    ids = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n, [None, pa.py_buffer(columns.ids.tobytes())]
    )
    data: dict[str, Any] = {
        "id": ids,
        "created_at_ns": pa.array(columns.created_at_ns, pa.int64()),
        "fraud_score": pa.array(columns.scores, pa.float64()),
        "latency_ms": pa.array(columns.latency_ms, pa.float64()),
    }
    for j, name in enumerate(columns.names):
        data[f"{FEATURE}{name}"] = pa.array(columns.features[:, j], pa.float32())
    return pa.table(data)


def hour_tables(chunks: Iterator[Columns]) -> Iterator[tuple[datetime, pa.Table]]:
    """The rows of ``chunks`` (in ``created_at`` order) as one table per hour."""
    current: datetime | None = None
    pieces: list[pa.Table] = []
    for chunk in chunks:
        table = _arrow(chunk)
        at = chunk.created_at_ns
        while table.num_rows:
            first = datetime.fromtimestamp(int(at[0]) // 10**9, UTC)
            hour = hour_of(first)
            edge = int(np.searchsorted(at, to_ns(hour + HOUR), side="left"))
            if current is not None and hour != current:
                yield current, pa.concat_tables(pieces, promote_options="default")
                pieces = []
            current = hour
            pieces.append(table.slice(0, edge))
            table, at = table.slice(edge), at[edge:]
    if current is not None and pieces:
        yield current, pa.concat_tables(pieces, promote_options="default")


def table_part(columns: Columns, names: tuple[str, ...]) -> Part:
    at = columns.created_at_ns
    hour = (
        None
        if not len(at)
        else hour_key(datetime.fromtimestamp(int(at[0]) // 10**9, UTC))
    )
    return Part(
        hour=hour,
        ids=columns.ids,
        created_at_ns=at,
        scores=columns.scores,
        latency_ms=columns.latency_ms,
        features=[columns.features[:, j] for j in range(len(names))],
    )


def assemble(
    parts: list[Part],
    names: tuple[str, ...],
    label_ids: np.ndarray,
    label_values: np.ndarray,
    resort: bool,
) -> LoggedWindow:
    n = sum(p.rows for p in parts)
    features = np.empty((n, len(names)), dtype=np.float32, order="F")
    offset = 0
    for p in parts:
        for j, column in enumerate(p.features):
            _fill(features[offset : offset + p.rows, j], column)
        offset += p.rows

    def joined(get: Any, dtype: Any) -> np.ndarray:
        if not parts:
            return np.empty(0, dtype=dtype)
        return np.concatenate([get(p) for p in parts]).astype(dtype, copy=False)

    ids = (
        np.concatenate([p.ids for p in parts]) if parts else np.empty((0, 16), np.uint8)
    )
    created = joined(lambda p: p.created_at_ns, np.int64)
    scores = joined(lambda p: p.scores, np.float64)
    latency = joined(lambda p: p.latency_ms, np.float64)
    if resort and n:
        order = _order(ids, created)
        ids, created, scores, latency = (
            ids[order],
            created[order],
            scores[order],
            latency[order],
        )
        features = np.asfortranarray(features[order])
    return LoggedWindow(
        feature_names=names,
        features=features,
        scores=scores,
        labels=_labels(ids, label_ids, label_values),
        created_at_ns=created,
        latency_ms=latency,
    )


def _order(ids: np.ndarray, created: np.ndarray) -> np.ndarray:
    """``(created_at, id)`` order, the ids compared as bytes."""
    words = np.ascontiguousarray(ids).view(">u8")
    return np.lexsort((words[:, 1], words[:, 0], created))


def _labels(ids: np.ndarray, label_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.full(len(ids), np.nan, dtype=np.float64)
    if not len(label_ids) or not len(ids):
        return out
    kind = pa.binary(16)
    rows = pa.FixedSizeBinaryArray.from_buffers(
        kind, len(ids), [None, pa.py_buffer(np.ascontiguousarray(ids).tobytes())]
    )
    known = pa.FixedSizeBinaryArray.from_buffers(
        kind, len(label_ids), [None, pa.py_buffer(label_ids.tobytes())]
    )
    at = pc.index_in(rows, value_set=known).to_numpy(zero_copy_only=False)
    hit = ~np.isnan(at)
    out[hit] = values[at[hit].astype(np.int64)]
    return out
