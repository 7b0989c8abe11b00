"""The prediction log: every prediction stored, in batches, none lost.

``/predict`` calls :meth:`PredictionLog.record`, which only appends to an in-memory
queue (well under a microsecond; no database work on the caller's thread). One writer
thread drains the queue in batches (``batch_size`` rows, or whatever arrived within
``max_delay``; on PostgreSQL a backlog, such as a /predict/batch leaves, in writes
of up to ``bulk_size``) and inserts each batch in one transaction, straight through the driver
(``DriverCursor.insert_many``; rows converted before SQLite's write turn is taken, so
scoring waits less for it). ``max_delay`` is 250 ms: fewer, larger log transactions
leave scoring more of the CPU and, on SQLite, of the write turn (one worker's
sustained /predict rate went from 768-861 to 1,154 req/s against 50 ms, with the
latency at 200 req/s unchanged; ``bench/bench_predict.py``).

Nothing is dropped:

- every insert is ``ON CONFLICT DO NOTHING`` on the primary key (id, created_at), so a
  batch can be retried, or a spool file replayed, any number of times: a row lands once
  (PostgreSQL first tries a plain ``COPY``, much faster, and when that meets a stored
  row it rolls back and the skipping insert runs);
- a batch that fails for want of the database (connection refused, lock timeout, ...)
  stays in flight and is retried with exponential backoff, ahead of everything queued
  after it;
- while the database stays away and more than ``high_water`` rows wait in memory, the
  writer moves them to a JSONL spool file (``shared.services.prediction_spool``) and
  replays it, before anything newer, once the database is back; if even the disk
  fails, the queue grows to ``4 × high_water`` and then ``record`` blocks (backpressure);
- :meth:`PredictionLog.close` drains the queue; whatever the database has not taken by
  the deadline is spilled to the spool, and the next :meth:`PredictionLog.start`
  replays every spool file before serving, then deletes it;
- a row the database refuses outright (a foreign key to an unknown model, a value it
  cannot store) is isolated by splitting its batch and kept in a ``rejected-*.jsonl``
  file, so one bad row cannot hold the rest back.

Non-finite floats in ``input_features`` and ``explanation`` are stored as JSON null:
PostgreSQL's JSONB has no NaN.

The owner (the app's runtime) creates one log per process, calls ``start()`` when it
starts serving and ``close()`` when it stops; nothing is registered at import.
"""

from __future__ import annotations

import atexit
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from shared.db.driver import DriverCursor, DriverSQL
from shared.db.models import Prediction
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.services import prediction_spool as spool

if TYPE_CHECKING:
    from shared.bootstrap import AppContext

log = logging.getLogger(__name__)

_TABLE = cast(Table, Prediction.__table__)
_UNIQUE_VIOLATION = "23505"
_COPY_MIN_ROWS = 500
_LABEL_CHUNK = 500


def _number(value: Any) -> Any:
    """A float for the database driver (numpy scalars included); anything that is not
    a number is passed on as it is, for the insert to refuse that row alone."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


@dataclass(slots=True)
class PredictionRecord:
    """One prediction as ``/predict`` made it; the columns of ``predictions`` less
    ``actual_label``, which arrives later (:func:`label_predictions`)."""

    id: uuid.UUID
    created_at: datetime  # aware, UTC
    model_id: uuid.UUID | None
    transaction_id: str | None
    input_features: dict[str, float]
    fraud_score: float
    is_fraud: bool
    explanation: dict[str, Any] | None = None
    latency_ms: float | None = None

    @classmethod
    def new(
        cls,
        *,
        model_id: uuid.UUID | None,
        transaction_id: str | None,
        input_features: dict[str, float],
        fraud_score: float,
        is_fraud: bool,
        explanation: dict[str, Any] | None = None,
        latency_ms: float | None = None,
    ) -> PredictionRecord:
        """A record with a fresh id, made now."""
        return cls(
            uuid.uuid4(),
            datetime.now(UTC),
            model_id,
            transaction_id,
            input_features,
            fraud_score,
            is_fraud,
            explanation,
            latency_ms,
        )

    def to_row(self) -> dict[str, Any]:
        """The row to insert (JSON columns cleaned, see :func:`spool.clean_json`)."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "model_id": self.model_id,
            "transaction_id": self.transaction_id,
            "input_features": spool.clean_json(self.input_features),
            "fraud_score": _number(self.fraud_score),
            "is_fraud": bool(self.is_fraud),
            "explanation": (
                None if self.explanation is None else spool.clean_json(self.explanation)
            ),
            "latency_ms": None if self.latency_ms is None else _number(self.latency_ms),
        }


@dataclass(frozen=True)
class PredictionLogStats:
    """A snapshot for the health endpoint and metrics."""

    running: bool
    pending: int  # recorded, not yet in the database (queued, in flight or spilled)
    written: int  # rows inserted by this log (its own and replayed)
    replayed: int  # rows read back from spool files and inserted (or already there)
    retried_batches: int  # batches that failed at least once and were retried
    failed_attempts: int  # failed insert attempts, all batches together
    spilled: int  # rows written to spool files
    rejected: int  # rows the database refused, set aside in rejected-*.jsonl
    spool_files: int  # spool files waiting to be replayed
    last_error: str | None


class PredictionLogClosed(RuntimeError):
    """``record`` after ``close``: the row would never be written."""


class PredictionLogFull(RuntimeError):
    """The queue is at its hard limit and no writer is running to drain it."""


@dataclass
class _SpoolFile:
    path: Path
    rows: int  # rows of this log's own records in it (0 for a file found at start)


@dataclass
class _Batch:
    rows: list[dict[str, Any]]


_Job = _Batch | _SpoolFile


class _Transient(Exception):
    """An insert failed for a reason that can pass: keep the rows and retry."""


def _is_poison(exc: BaseException) -> bool:
    """True when the rows themselves are at fault (retrying cannot help): a constraint
    (foreign key, NOT NULL), a value the database cannot store, or a bind-time error
    (a value of the wrong type). Everything else (connection refused, lock timeouts,
    a missing table before migrations ran) is treated as passing."""
    if isinstance(exc, IntegrityError | DataError):
        return True
    return isinstance(exc, StatementError) and not isinstance(exc, DBAPIError)


_NEW, _RUNNING, _CLOSING, _CLOSED = "new", "running", "closing", "closed"


class PredictionLog:
    """A write-behind log of predictions into ``predictions``; see the module doc."""

    def __init__(
        self,
        db: Database,
        spool_dir: Path,
        *,
        batch_size: int = 250,
        bulk_size: int = 2000,
        max_delay: float = 0.25,
        high_water: int = 50_000,
        retry_base: float = 0.05,
        retry_max: float = 5.0,
    ) -> None:
        if batch_size < 1 or high_water < batch_size:
            raise ValueError("need 1 <= batch_size <= high_water")
        self.db = db
        self.spool_dir = Path(spool_dir)
        self.batch_size = batch_size
        # a write in flight is off the queue: bulk writes of up to high_water rows
        # keep the backpressure bound (queue plus one write). Not on SQLite, where a
        # write holds the database's one write turn, which scoring waits for: there
        # 2,000-row writes made back-to-back batches of 10,000 5-8 % slower than
        # 250-row ones (in-process, five pairs of six-batch runs)
        if db.dialect == "sqlite":
            bulk_size = batch_size
        self.bulk_size = max(batch_size, min(bulk_size, high_water))
        self.max_delay = max_delay
        self.high_water = high_water
        self.hard_limit = 4 * high_water
        self.retry_base = retry_base
        self.retry_max = retry_max

        self._engine = db.engine.execution_options(sqlite_begin="immediate")
        # rows are converted for the driver before the write turn is taken and go in
        # through DriverCursor.insert_many: on SQLite the turn is what scoring waits for
        self._sql = DriverSQL(db.engine.dialect, [_TABLE])

        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits here
        self._progress = threading.Condition(self._lock)  # flush() and full record()
        self._queue: deque[PredictionRecord] = deque()
        self._inflight: list[dict[str, Any]] = []  # own rows of the batch being written
        self._spools: deque[_SpoolFile] = deque()
        self._spooled = 0  # own rows in spool files not yet replayed
        self._moving = 0  # own rows between the queue and a spool file
        self._recorded = 0  # own rows ever recorded
        self._committed = 0  # own rows that reached the database (a prefix, in order)
        self._flush_target = 0
        self._state = _NEW
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None
        self._close_ok = True
        self._spill_retry_at = 0.0  # after a failed spill, when to try the disk again
        self._abandon = False  # closing, database and disk both failing: stop trying

        self._written = 0
        self._replayed = 0
        self._retried_batches = 0
        self._failed_attempts = 0
        self._spilled = 0
        self._rejected = 0
        self._last_error: str | None = None

    @classmethod
    def for_context(cls, ctx: AppContext, **options: Any) -> PredictionLog:
        """A log on the context's database, spooling under ``{data_dir}/prediction-spool``."""
        return cls(ctx.db, ctx.settings.resolved_prediction_spool_dir, **options)

    # ---- the hot path -------------------------------------------------------------

    def record(self, row: PredictionRecord) -> None:
        """Queue one prediction for writing; returns at once (blocks only when the
        queue is at its hard limit, which takes both the database and the disk to fail)."""
        with self._lock:
            if self._state is _CLOSING or self._state is _CLOSED:
                raise PredictionLogClosed("the prediction log is closed")
            queue = self._queue
            if len(queue) + self._moving >= self.hard_limit:
                self._wait_for_room()
            queue.append(row)
            self._recorded += 1
            n = len(queue)
            if n == 1 or n == self.batch_size or n == self.high_water:
                self._wake.notify()  # the first row starts the max_delay clock

    def record_many(self, rows: Iterable[PredictionRecord]) -> None:
        """Queue several predictions (``/predict/batch``), in order."""
        items = list(rows)
        start = 0
        with self._lock:
            if self._state is _CLOSING or self._state is _CLOSED:
                raise PredictionLogClosed("the prediction log is closed")
            while start < len(items):
                if len(self._queue) + self._moving >= self.hard_limit:
                    self._wait_for_room()
                room = self.hard_limit - len(self._queue) - self._moving
                part = items[start : start + room]
                before = len(self._queue)
                self._queue.extend(part)
                self._recorded += len(part)
                start += len(part)
                after = len(self._queue)
                if (
                    before == 0
                    or before < self.batch_size <= after
                    or before < self.high_water <= after
                ):
                    self._wake.notify()

    def _wait_for_room(self) -> None:
        """With the lock held: backpressure until the writer makes room."""
        while len(self._queue) + self._moving >= self.hard_limit:
            if not self._writer_alive():
                raise PredictionLogFull(
                    f"{len(self._queue)} predictions queued and no writer running"
                )
            log.warning(
                "prediction log full (%d rows): record() waits", len(self._queue)
            )
            self._wake.notify()
            self._progress.wait(1.0)
            if self._state is _CLOSING or self._state is _CLOSED:
                raise PredictionLogClosed("the prediction log was closed")

    # ---- the owner's side ---------------------------------------------------------

    def start(self) -> None:
        """Replay spool files left by earlier runs (idempotently, then delete them),
        then start the writer. If the database is away, the writer replays them later,
        before anything recorded now."""
        with self._lock:
            if self._state is not _NEW:
                raise RuntimeError(f"prediction log already {self._state}")
        found = [_SpoolFile(path, 0) for path in spool.pending_files(self.spool_dir)]
        while found:
            try:
                self._replay(found[0])
            except _Transient as exc:
                log.warning(
                    "prediction spool: database unavailable at start (%s); "
                    "%d file(s) will be replayed by the writer",
                    exc,
                    len(found),
                )
                break
            found.pop(0)
        with self._lock:
            self._spools.extend(found)
            self._state = _RUNNING
            self._thread = threading.Thread(
                target=self._run, name="prediction-log-writer", daemon=True
            )
            self._thread.start()
        atexit.register(self._close_at_exit)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Block until every prediction recorded before the call is in the database.
        False if that did not happen within ``timeout`` (database away, log closed)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            target = self._recorded
            if self._committed >= target:
                return True
            self._flush_target = max(self._flush_target, target)
            self._wake.notify()
            while self._committed < target:
                if not self._writer_alive():
                    return False
                if end is None:
                    self._progress.wait(1.0)
                    continue
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(min(remaining, 1.0))
            return True

    def close(self, timeout: float = 10.0) -> bool:
        """Write what is queued and stop the writer. Whatever the database has not
        taken within ``timeout`` seconds goes to the spool. True when every recorded
        row is in the database or a spool file."""
        with self._lock:
            if self._state is _CLOSED:
                return self._close_ok
            if self._state is _CLOSING:
                raise RuntimeError("close() already in progress")
            self._state = _CLOSING
            self._deadline = time.monotonic() + max(0.0, timeout)
            self._wake.notify_all()
            self._progress.notify_all()
            thread = self._thread
        atexit.unregister(self._close_at_exit)
        if thread is not None:
            thread.join(max(0.0, timeout) + 5.0)
        if thread is not None and thread.is_alive():
            log.error(
                "prediction log writer stuck past close(); spilling what it holds"
            )
        with self._lock:
            leftovers = bool(self._queue or self._inflight)
        if leftovers:  # never started, stuck, or it gave up: one more go at the disk
            self._spill_leftovers(include_inflight=True)
        with self._lock:
            self._state = _CLOSED
            lost = len(self._queue) + len(self._inflight) + self._moving
            self._close_ok = lost == 0
            if lost:
                log.critical(
                    "prediction log closed with %d rows neither written nor spooled",
                    lost,
                )
            self._progress.notify_all()
            return self._close_ok

    def _close_at_exit(self) -> None:
        try:
            self.close(5.0)
        except RuntimeError:
            pass

    # ---- figures ------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Recorded predictions not yet in the database (queued, in flight, spilled)."""
        with self._lock:
            return self._recorded - self._committed

    @property
    def written(self) -> int:
        return self._written

    @property
    def retried_batches(self) -> int:
        return self._retried_batches

    @property
    def spilled(self) -> int:
        return self._spilled

    def stats(self) -> PredictionLogStats:
        with self._lock:
            return PredictionLogStats(
                running=self._state is _RUNNING and self._writer_alive(),
                pending=self._recorded - self._committed,
                written=self._written,
                replayed=self._replayed,
                retried_batches=self._retried_batches,
                failed_attempts=self._failed_attempts,
                spilled=self._spilled,
                rejected=self._rejected,
                spool_files=len(self._spools),
                last_error=self._last_error,
            )

    # ---- the writer thread --------------------------------------------------------

    def _writer_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            while (job := self._next_job()) is not None:
                self._do(job)
        except BaseException:  # a bug, not an outage: keep the rows on disk
            log.critical("prediction log writer crashed", exc_info=True)
            self._spill_leftovers(include_inflight=True)
            raise
        finally:
            with self._lock:
                self._progress.notify_all()

    def _next_job(self) -> _Job | None:
        with self._lock:
            while True:
                if self._abandon:
                    return None
                closing = self._state is _CLOSING
                if self._spools and not (closing and self._past_deadline()):
                    return self._spools[0]
                if not self._queue:
                    if closing:
                        return None
                    self._wake.wait()
                    continue
                if (
                    len(self._queue) < self.batch_size
                    and not closing
                    and self._flush_target <= self._committed
                ):
                    self._wake.wait(self.max_delay)  # let a batch gather
                # a backlog (a /predict/batch) goes in bigger writes: fewer commits
                size = self.batch_size
                if len(self._queue) > size:
                    size = max(size, min(self.bulk_size, len(self._queue)))
                n = min(len(self._queue), size)
                if n:
                    break
            records = [self._queue.popleft() for _ in range(n)]
            self._progress.notify_all()  # room for a blocked record()
        rows = [r.to_row() for r in records]
        with self._lock:
            self._inflight = rows
        return _Batch(rows)

    def _past_deadline(self) -> bool:
        return time.monotonic() >= self._deadline

    def _do(self, job: _Job) -> None:
        attempt = 0
        while True:
            try:
                if isinstance(job, _Batch):
                    self._write(job.rows)
                else:
                    self._replay(job)
            except _Transient as exc:
                attempt += 1
                with self._lock:
                    self._failed_attempts += 1
                    if attempt == 1:
                        self._retried_batches += 1
                    self._last_error = str(exc)
                if attempt == 1 or attempt % 20 == 0:
                    log.warning(
                        "prediction log: insert failed (attempt %d), will retry: %s",
                        attempt,
                        exc,
                    )
                if self._wait_retry(job, attempt) == "done":
                    return
                continue
            with self._lock:
                if isinstance(job, _Batch):
                    self._committed += len(job.rows)
                    self._inflight = []
                else:
                    self._spools.popleft()
                    self._committed += job.rows
                    self._spooled -= job.rows
                self._progress.notify_all()
            return

    def _wait_retry(self, job: _Job, attempt: int) -> Literal["retry", "done"]:
        """After a failed attempt: spill if memory or time runs out, else back off."""
        delay = min(self.retry_max, self.retry_base * 2.0 ** min(attempt - 1, 40))
        retry_at = time.monotonic() + delay * random.uniform(0.75, 1.0)
        with self._lock:
            while True:
                now = time.monotonic()
                if self._state is _CLOSING and now >= self._deadline:
                    break
                in_memory = len(self._queue) + len(self._inflight)
                if in_memory >= self.high_water and now >= self._spill_retry_at:
                    break
                remaining = min(retry_at, self._deadline) - now
                if remaining <= 0:
                    return "retry"
                self._wake.wait(remaining)
            records = list(self._queue)
            self._queue.clear()
            own_rows = self._inflight if isinstance(job, _Batch) else []
            self._moving += len(records) + len(own_rows)
            self._progress.notify_all()
        rows = own_rows + [r.to_row() for r in records]
        path = self._spill(rows) if rows else None
        with self._lock:
            self._moving -= len(rows)
            self._progress.notify_all()
            if rows and path is None:  # the disk failed too: keep them in memory
                self._queue.extendleft(reversed(records))
                self._spill_retry_at = time.monotonic() + max(1.0, delay)
                if self._state is _CLOSING and self._past_deadline():
                    self._abandon = True  # close() reports what could not be kept
                    return "done"
                return "retry"
            if path is not None:
                self._spools.append(_SpoolFile(path, len(rows)))
                self._spooled += len(rows)
            if isinstance(job, _Batch):
                self._inflight = []
                return "done"  # its rows are in the spool now, replayed from there
            if self._state is _CLOSING and self._past_deadline():
                return "done"  # the file stays for the next start()
            return "retry"  # the file in hand is still first in line

    def _spill(self, rows: list[dict[str, Any]]) -> Path | None:
        try:
            path = spool.write_rows(self.spool_dir, rows, spool.SPOOL_PREFIX)
        except Exception:
            log.exception(
                "prediction log: cannot spill %d rows to %s", len(rows), self.spool_dir
            )
            return None
        with self._lock:
            self._spilled += len(rows)
        log.warning(
            "prediction log: database unavailable, %d rows spilled to %s",
            len(rows),
            path,
        )
        return path

    def _spill_leftovers(self, include_inflight: bool) -> None:
        """Everything held in memory to the spool (writer gone or stuck). A row also
        being written by a stuck writer is harmless: replay skips ids already there."""
        with self._lock:
            records = list(self._queue)
            self._queue.clear()
            rows = list(self._inflight) if include_inflight else []
            self._moving += len(records)
        rows += [r.to_row() for r in records]
        path = self._spill(rows) if rows else None
        with self._lock:
            self._moving -= len(records)
            self._progress.notify_all()
            if rows and path is None:
                self._queue.extendleft(reversed(records))
            elif include_inflight:
                self._inflight = []

    # ---- database work ------------------------------------------------------------

    def _write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` in one transaction; rows refused on their own merit are set
        aside (found by halving the batch). Raises _Transient for passing failures."""
        try:
            by_columns = self._bound(rows)
        except Exception as exc:  # noqa: BLE001 - a value its column cannot take
            self._set_aside(rows, exc)
            return
        try:
            if not self._copied(by_columns):
                self._insert(by_columns, " ON CONFLICT DO NOTHING")
        except Exception as exc:
            if not _is_poison(exc):
                raise _Transient(f"{type(exc).__name__}: {exc}"[:500]) from exc
            self._set_aside(rows, exc)
            return
        with self._lock:
            self._written += len(rows)

    def _copied(
        self, by_columns: Mapping[tuple[str, ...], list[tuple[Any, ...]]]
    ) -> bool:
        """PostgreSQL: many rows in by ``COPY``, several times faster than the
        ``ON CONFLICT DO NOTHING`` insert (a /predict/batch of 10,000 rows took
        the writer 500 ms that way); False, and nothing written, when a row is
        there already (a retried batch whose commit went through, a replayed
        spool file), the rows are few (/predict's, a few dozen at a time: ``COPY``
        costs more round trips) or the database is SQLite: then the insert that
        skips stored rows runs instead."""
        rows = sum(len(group) for group in by_columns.values())
        if self.db.dialect != "postgresql" or rows < _COPY_MIN_ROWS:
            return False
        try:
            self._insert(by_columns)  # no suffix: insert_many copies on PostgreSQL
        except IntegrityError as exc:
            if getattr(exc.orig, "sqlstate", None) == _UNIQUE_VIOLATION:
                return False
            raise
        return True

    def _insert(
        self,
        by_columns: Mapping[tuple[str, ...], list[tuple[Any, ...]]],
        suffix: str = "",
    ) -> None:
        """The bound rows in one transaction (``DriverCursor.insert_many``)."""
        with self.db.writing(), self._engine.begin() as conn:
            cursor = DriverCursor(conn, self._sql)
            for columns, group in by_columns.items():
                cursor.insert_many(_TABLE, columns, group, suffix)

    def _bound(
        self, rows: Sequence[dict[str, Any]]
    ) -> dict[tuple[str, ...], list[tuple[Any, ...]]]:
        """The rows as the driver takes them, grouped by their columns (replayed spool
        rows may lack some). Bound column by column: a value repeated through the
        column (a batch's ``created_at`` and model) is bound once, and the writer holds
        the GIL, which the next /predict/batch needs, half as long as row by row."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row), []).append(row)
        out: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
        for names, group in groups.items():
            columns = []
            for name in names:
                values = [row[name] for row in group]
                bind = self._sql.bind(_TABLE, name)
                first = values[0]
                if first is not None and all(v is first for v in values):
                    columns.append([bind(first)] * len(values))
                else:
                    columns.append([None if v is None else bind(v) for v in values])
            out[names] = list(zip(*columns, strict=True))
        return out

    def _set_aside(self, rows: Sequence[dict[str, Any]], exc: BaseException) -> None:
        """The rows at fault, found by halving, to the rejected file; the rest in."""
        if len(rows) == 1:
            self._reject(rows, exc)
            return
        mid = len(rows) // 2
        self._write(rows[:mid])
        self._write(rows[mid:])

    def _reject(self, rows: Sequence[dict[str, Any]], exc: BaseException) -> None:
        log.error(
            "prediction log: the database refused a row; set aside in %s: %s",
            self.spool_dir,
            str(exc)[:500],
        )
        try:
            spool.write_rows(self.spool_dir, rows, spool.REJECTED_PREFIX)
        except OSError:
            log.critical(
                "prediction log: cannot keep refused rows: %r", rows, exc_info=True
            )
        with self._lock:
            self._rejected += len(rows)

    def _replay(self, job: _SpoolFile) -> None:
        """Insert the rows of one spool file (those already present are skipped), then
        delete it. Raises _Transient if the database is away; the file stays."""
        try:
            chunk: list[dict[str, Any]] = []
            bad: list[str] = []
            count = 0
            for item in spool.read_rows(job.path):
                if isinstance(item, str):
                    bad.append(item)
                    continue
                chunk.append(item)
                if len(chunk) >= self.batch_size:
                    self._write(chunk)
                    count += len(chunk)
                    chunk = []
            if chunk:
                self._write(chunk)
                count += len(chunk)
        except FileNotFoundError:  # another process replayed it (and deleted it)
            return
        except OSError as exc:  # unreadable for now (permissions, I/O): keep, retry
            raise _Transient(f"spool file {job.path}: {exc}") from exc
        if bad:
            self._keep_unreadable(job.path, bad)
        job.path.unlink(missing_ok=True)
        with self._lock:
            self._replayed += count
        log.info("prediction log: replayed %d rows from %s", count, job.path.name)

    def _keep_unreadable(self, path: Path, lines: list[str]) -> None:
        target = path.with_name(spool.REJECTED_PREFIX + "unreadable-" + path.name)
        try:
            target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError:
            log.critical(
                "prediction spool: lost unreadable lines of %s", path, exc_info=True
            )
        with self._lock:
            self._rejected += len(lines)


# ---- labels and counts ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelResult:
    updated: int  # prediction rows whose actual_label was set
    unmatched_prediction_ids: list[uuid.UUID] = field(default_factory=list)
    unmatched_transaction_ids: list[str] = field(default_factory=list)
    flushed: bool = True  # False: the log could not be flushed first (database away)


def _parse_label_items(
    items: Sequence[Mapping[str, Any]],
) -> tuple[dict[uuid.UUID, bool], dict[str, bool]]:
    by_id: dict[uuid.UUID, bool] = {}
    by_txn: dict[str, bool] = {}
    errors: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(item, Mapping):
            errors.append({"field": where, "message": "must be an object"})
            continue
        label = item.get("label")
        if isinstance(label, bool):
            value = label
        elif type(label) is int and label in (0, 1):
            value = bool(label)
        else:
            errors.append(
                {"field": f"{where}.label", "message": "must be true/false or 0/1"}
            )
            continue
        pid, tid = item.get("prediction_id"), item.get("transaction_id")
        if (pid is None) == (tid is None):
            errors.append(
                {
                    "field": where,
                    "message": "give exactly one of prediction_id, transaction_id",
                }
            )
        elif pid is not None:
            try:
                key = pid if isinstance(pid, uuid.UUID) else uuid.UUID(str(pid))
            except ValueError:
                errors.append(
                    {"field": f"{where}.prediction_id", "message": "not a UUID"}
                )
                continue
            by_id[key] = value
        elif not isinstance(tid, str) or not tid or len(tid) > 255:
            errors.append(
                {
                    "field": f"{where}.transaction_id",
                    "message": "must be a non-empty string of at most 255 characters",
                }
            )
        else:
            by_txn[tid] = value
    if errors:
        raise ValidationFailed("invalid label items", errors)
    return by_id, by_txn


def _chunks(values: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def label_predictions(
    db: Database,
    log: PredictionLog | None,
    items: Sequence[Mapping[str, Any]],
    *,
    flush_timeout: float = 10.0,
) -> LabelResult:
    """Set ``actual_label`` from ``{"prediction_id": uuid | str, "label": bool | 0 | 1}``
    or ``{"transaction_id": str, "label": ...}`` items, in one transaction.

    Flushes ``log`` first, so a label for a prediction made a moment ago finds it. A
    transaction id labels every prediction of that transaction. When the same row is
    named twice, the later item wins, and a prediction id wins over a transaction id.
    Invalid items raise ValidationFailed before anything is written."""
    by_id, by_txn = _parse_label_items(items)
    flushed = log.flush(flush_timeout) if log is not None else True
    touched: set[uuid.UUID] = set()
    matched: dict[str, set[Any]] = {"id": set(), "transaction_id": set()}
    engine = db.engine.execution_options(sqlite_begin="immediate")
    with db.writing(), engine.begin() as conn:
        # ids last: a prediction named by id wins over its transaction's label
        for column, labels in (("transaction_id", by_txn), ("id", by_id)):
            key = _TABLE.c[column]
            for value in (False, True):
                keys = [k for k, v in labels.items() if v is value]
                for part in _chunks(keys, _LABEL_CHUNK):
                    result = conn.execute(
                        update(_TABLE)
                        .where(key.in_(part))
                        .values(actual_label=value)
                        .returning(_TABLE.c.id, key)
                    )
                    for row_id, matched_key in result:
                        touched.add(row_id)
                        matched[column].add(matched_key)
    matched_ids, matched_txns = matched["id"], matched["transaction_id"]
    return LabelResult(
        updated=len(touched),
        unmatched_prediction_ids=[i for i in by_id if i not in matched_ids],
        unmatched_transaction_ids=[t for t in by_txn if t not in matched_txns],
        flushed=flushed,
    )


def count_predictions(db: Database, model_id: uuid.UUID | None = None) -> int:
    """Rows in ``predictions`` (of one model, if given)."""
    stmt = select(func.count()).select_from(_TABLE)
    if model_id is not None:
        stmt = stmt.where(_TABLE.c.model_id == model_id)
    with db.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
