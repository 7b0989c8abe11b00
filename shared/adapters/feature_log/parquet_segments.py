"""The prediction log's columnar mirror: Parquet segments in blob storage, by model and
hour (``feature-log/model={id}/hour=2026-12-08T01/part-<from>-<nonce>.parquet``), listed
in the ``feature_log_segments`` ledger.

``predictions`` stays the source of truth. A segment belongs to the mirror once its
ledger row is committed; a file without one (an export interrupted after the upload) is
never read, and the next export covers its rows again.

The export rule: the model's watermark is the largest ``created_to`` in its ledger. An
export copies the rows with ``created_at`` in ``[watermark, now - lag)``, one segment per
hour, and commits their ledger rows in one transaction; the ledger's unique
``(model_id, created_from)`` lets only one of two racing exports commit (the other
deletes its files). Rows committed after the watermark passed their ``created_at``
(a slow transaction, a replayed prediction) are caught by counts: the export compares
each recent hour's rows in the table with its ledger and rewrites an hour that differs,
and ``window`` compares the rows it read from segments with the table's count for the
same range, reading an hour that differs from the table instead. So a window always
holds exactly the table's rows.

Labels are not mirrored: ``window`` reads the labelled rows' ids and labels from the
table through a partial index of labelled rows and joins them by id.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import Connection, Table, delete, func, insert, select

from shared.adapters.blobs.local_copy import local_file
from shared.adapters.feature_log import rows as log_rows
from shared.adapters.feature_log.columns import (
    BASE,
    FEATURE,
    Part,
    assemble,
    hour_tables,
    table_part,
)
from shared.adapters.feature_log.rows import (
    EPOCH,
    HOUR,
    hour_key,
    hour_of,
    to_ns,
)
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import FeatureLogSegment, MLModel
from shared.db.session import Database
from shared.ports import BlobNotFound, BlobStore, Duplicate, LoggedWindow

SEGMENTS = cast(Table, FeatureLogSegment.__table__)
MODELS = cast(Table, MLModel.__table__)
_READ_ATTEMPTS = 3


@dataclass(frozen=True)
class Segment:
    path: str
    hour: datetime
    created_from: datetime
    created_to: datetime
    rows: int


class ParquetSegmentFeatureLog:
    """``FeatureLogReader`` and ``FeatureLogMirror`` on Parquet segments."""

    def __init__(
        self,
        db: Database,
        uow: SqlTransactions,
        blobs: BlobStore,
        *,
        lag: timedelta = timedelta(minutes=2),
        recheck: timedelta = timedelta(hours=6),
        prefix: str = "feature-log",
        compression: str = "none",
        input_vectors: bool = True,
    ) -> None:
        self.db = db
        self.uow = uow
        self.blobs = blobs
        self.lag = lag
        self.recheck = recheck
        self.prefix = prefix
        self.compression = compression
        self.input_vectors = input_vectors  # off: every row read from its JSON
        self._layouts: dict[uuid.UUID, list[str] | None] = {}

    def _layout(self, conn: Connection, model_id: uuid.UUID) -> list[str] | None:
        """The model's feature order, which its rows' packed input vectors follow; a
        model's features never change, so it is read once."""
        if not self.input_vectors:
            return None
        if model_id not in self._layouts:
            details = conn.execute(
                select(MODELS.c.details).where(MODELS.c.id == model_id)
            ).scalar()
            features = (details or {}).get("features")
            self._layouts[model_id] = list(features) if features else None
        return self._layouts[model_id]

    # ---- export and compaction -----------------------------------------------------

    def export(self, now: datetime | None = None) -> int:
        """Mirror every model's rows up to ``now - lag``, then rewrite the recent hours
        whose row counts differ from the table's; the rows written."""
        cut = (now or datetime.now(UTC)) - self.lag
        with self.db.engine.connect() as conn:
            models = list(conn.execute(select(MODELS.c.id)).scalars())
        written = 0
        for model_id in models:
            written += self._export_model(model_id, cut)
            written += self._recheck(model_id)
        return written

    def compact(self) -> int:
        """Merge the segments of each closed hour (wholly below the watermark) into
        one; the segments merged away."""
        with self.db.engine.connect() as conn:
            models = list(conn.execute(select(MODELS.c.id)).scalars())
        merged = 0
        for model_id in models:
            segments = self._segments(model_id)
            mark = max((s.created_to for s in segments), default=None)
            for hour, group in _by_hour(segments).items():
                if len(group) > 1 and mark is not None and hour + HOUR <= mark:
                    merged += self._merge(model_id, group)
        return merged

    def _export_model(self, model_id: uuid.UUID, cut: datetime) -> int:
        """One hour at a time, each read in its own short transaction (a long one
        would hold SQLite's WAL from restarting); one ledger commit for them all."""
        segments = self._segments(model_id)
        mark = max((s.created_to for s in segments), default=None)
        start = cursor = mark if mark is not None else EPOCH
        pending = []
        while cursor < cut:
            with self.db.engine.connect() as conn:
                first = log_rows.first_at(conn, model_id, cursor, cut)
                if first is None:
                    break
                hour = hour_of(first)
                cursor = min(hour + HOUR, cut)
                chunks = log_rows.read_rows(
                    conn, model_id, first, cursor, layout=self._layout(conn, model_id)
                )
                pending += [
                    self._upload(model_id, hour, max(start, hour), cursor, table)
                    for _, table in hour_tables(chunks)
                ]
        return self._commit(pending, replaced=[])

    def _recheck(self, model_id: uuid.UUID) -> int:
        """Rewrite the hours since ``recheck`` before the watermark whose ledger rows
        differ from the table's count (rows committed late, rows deleted)."""
        segments = self._segments(model_id)
        mark = max((s.created_to for s in segments), default=None)
        if mark is None:
            return 0
        since = hour_of(mark - self.recheck)
        mirrored: dict[str, int] = {}
        for s in segments:
            if s.hour >= since:
                mirrored[hour_key(s.hour)] = mirrored.get(hour_key(s.hour), 0) + s.rows
        with self.db.engine.connect() as conn:
            if log_rows.count(conn, model_id, since, mark) == sum(mirrored.values()):
                return 0
            stored = log_rows.hour_counts(conn, model_id, since, mark)
        written = 0
        for key in sorted(set(stored) | set(mirrored)):
            if stored.get(key, 0) != mirrored.get(key, 0):
                hour = datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)
                old = [s for s in segments if s.hour == hour]
                written += self._rewrite(model_id, hour, min(hour + HOUR, mark), old)
        return written

    def _rewrite(
        self, model_id: uuid.UUID, hour: datetime, to: datetime, old: list[Segment]
    ) -> int:
        with self.db.engine.connect() as conn:
            layout = self._layout(conn, model_id)
            chunks = log_rows.read_rows(conn, model_id, hour, to, layout=layout)
            pending = [
                self._upload(model_id, hour, hour, to, table)
                for _, table in hour_tables(chunks)
            ]
        return self._commit(pending, replaced=old)

    def _merge(self, model_id: uuid.UUID, group: list[Segment]) -> int:
        tables = [self._read(s.path, None) for s in group]
        merged = pa.concat_tables(tables, promote_options="default")
        first, last = group[0], group[-1]
        new = self._upload(
            model_id, first.hour, first.created_from, last.created_to, merged
        )
        self._commit([new], replaced=group)
        return len(group) - 1

    def _upload(
        self,
        model_id: uuid.UUID,
        hour: datetime,
        created_from: datetime,
        created_to: datetime,
        table: pa.Table,
    ) -> dict[str, Any]:
        path = (
            f"{self.prefix}/model={model_id}/hour={hour_key(hour)}/"
            f"part-{to_ns(created_from)}-{uuid.uuid4().hex[:12]}.parquet"
        )
        sink = io.BytesIO()
        pq.write_table(
            table,
            sink,
            compression=self.compression,
            use_dictionary=False,  # measured values rarely repeat; plain pages read faster
            write_statistics=["created_at_ns"],
        )
        self.blobs.put_bytes(path, sink.getvalue())
        return {
            "path": path,
            "model_id": model_id,
            "hour": hour,
            "created_from": created_from,
            "created_to": created_to,
            "rows": table.num_rows,
            "written_at": datetime.now(UTC),
        }

    def _commit(self, new: list[dict[str, Any]], replaced: Sequence[Segment]) -> int:
        """Swap ``replaced`` for ``new`` in the ledger in one transaction. When another
        worker got there first, drop this worker's files and change nothing."""
        old = [s.path for s in replaced]
        try:
            with self.uow(write=True) as tx:
                if old:
                    gone = tx.session.execute(
                        delete(SEGMENTS).where(SEGMENTS.c.path.in_(old))
                    )
                    if cast(Any, gone).rowcount != len(old):
                        raise Duplicate("the segments were replaced meanwhile")
                if new:
                    tx.session.execute(insert(SEGMENTS), new)
        except Duplicate:
            self._delete(row["path"] for row in new)
            return 0
        self._delete(old)
        return sum(int(row["rows"]) for row in new)

    def _delete(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.blobs.delete_prefix(path)

    def _segments(
        self,
        model_id: uuid.UUID,
        conn: Connection | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Segment]:
        stmt = select(
            SEGMENTS.c.path,
            SEGMENTS.c.hour,
            SEGMENTS.c.created_from,
            SEGMENTS.c.created_to,
            SEGMENTS.c.rows,
        ).where(SEGMENTS.c.model_id == model_id)
        if start is not None and end is not None:
            stmt = stmt.where(
                SEGMENTS.c.created_to > start, SEGMENTS.c.created_from < end
            )
        stmt = stmt.order_by(SEGMENTS.c.created_from)
        if conn is not None:
            return [Segment(*row) for row in conn.execute(stmt)]
        with self.db.engine.connect() as own:
            return [Segment(*row) for row in own.execute(stmt)]

    def _read(self, path: str, columns: list[str] | None) -> pa.Table:
        with local_file(self.blobs, path) as file:
            if not file.is_file():
                raise BlobNotFound(path)
            return pq.read_table(
                file, columns=columns, memory_map=True, use_threads=False
            )

    # ---- reading a window ------------------------------------------------------------

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        """Rows in ``(created_at, id)`` order. A segment compacted away while it was
        being read is read again from the new ledger."""
        for attempt in range(_READ_ATTEMPTS):
            try:
                return self._window(model_id, start, end, tuple(feature_names))
            except BlobNotFound:
                if attempt == _READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        names: tuple[str, ...],
    ) -> LoggedWindow:
        start_ns, end_ns = to_ns(start), to_ns(end)
        # one snapshot for the ledger, the counts, the tail and the labels
        postgres = self.db.engine.dialect.name == "postgresql"
        snapshot = {"isolation_level": "REPEATABLE READ"} if postgres else {}
        with self.db.engine.connect().execution_options(**snapshot) as conn:
            mark = conn.execute(
                select(func.max(SEGMENTS.c.created_to)).where(
                    SEGMENTS.c.model_id == model_id
                )
            ).scalar()
            mirrored_to = start if mark is None else max(start, min(end, mark))
            parts: list[Part] = []
            if mirrored_to > start:
                for s in self._segments(model_id, conn, start, mirrored_to):
                    parts.append(self._segment_part(s, names, start_ns, end_ns))
            resorted = self._check(conn, model_id, start, mirrored_to, names, parts)
            layout = self._layout(conn, model_id)
            parts += [
                table_part(c, names)
                for c in log_rows.read_rows(
                    conn, model_id, mirrored_to, end, names, layout
                )
            ]
            label_ids, label_values = log_rows.labels(conn, model_id, start, end)
        return assemble(parts, names, label_ids, label_values, resorted)

    def _check(
        self,
        conn: Connection,
        model_id: uuid.UUID,
        start: datetime,
        to: datetime,
        names: tuple[str, ...],
        parts: list[Part],
    ) -> bool:
        """Make ``parts`` hold exactly the table's rows in ``[start, to)``: an hour whose
        segment rows differ from the table's count is read from the table. Whether the
        parts are out of order now."""
        if to <= start:
            return False
        if log_rows.count(conn, model_id, start, to) == sum(p.rows for p in parts):
            return False
        stored = log_rows.hour_counts(conn, model_id, start, to)
        read: dict[str, int] = {}
        for p in parts:
            read[str(p.hour)] = read.get(str(p.hour), 0) + p.rows
        bad = {k for k in set(stored) | set(read) if stored.get(k, 0) != read.get(k, 0)}
        parts[:] = [p for p in parts if p.hour not in bad]
        for key in sorted(bad):
            hour = datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)
            chunks = log_rows.read_rows(
                conn, model_id, max(hour, start), min(hour + HOUR, to), names
            )
            parts += [table_part(c, names) for c in chunks]
        return True

    def _segment_part(
        self, segment: Segment, names: tuple[str, ...], start_ns: int, end_ns: int
    ) -> Part:
        with local_file(self.blobs, segment.path) as file:
            if not file.is_file():
                raise BlobNotFound(segment.path)
            present = set(pq.read_schema(file, memory_map=True).names)
            wanted = [f"{FEATURE}{n}" for n in names if f"{FEATURE}{n}" in present]
            table = pq.read_table(
                file, columns=[*BASE, *wanted], memory_map=True, use_threads=False
            )
        if to_ns(segment.created_from) < start_ns or to_ns(segment.created_to) > end_ns:
            at = table.column("created_at_ns")
            keep = pc.and_(pc.greater_equal(at, start_ns), pc.less(at, end_ns))
            table = table.filter(keep)
        ids = table.column("id").combine_chunks()
        raw = np.frombuffer(ids.buffers()[1], dtype=np.uint8)
        return Part(
            hour=hour_key(segment.hour),
            ids=raw[ids.offset * 16 : (ids.offset + len(ids)) * 16].reshape(-1, 16),
            created_at_ns=table.column("created_at_ns").to_numpy(),
            scores=table.column("fraud_score").to_numpy(),
            latency_ms=table.column("latency_ms").to_numpy(zero_copy_only=False),
            features=[
                table.column(f"{FEATURE}{n}") if f"{FEATURE}{n}" in present else None
                for n in names
            ],
        )


# ---- helpers -------------------------------------------------------------------------


def _by_hour(segments: list[Segment]) -> dict[datetime, list[Segment]]:
    out: dict[datetime, list[Segment]] = {}
    for s in segments:
        out.setdefault(s.hour, []).append(s)
    return out
