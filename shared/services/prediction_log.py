"""The prediction log: one ``predictions`` row per new prediction, written in the same
database transaction as the online state change that produced it.

``Predictor`` hands :meth:`PredictionLog.write` to the online feature store, which calls
it inside the transaction that applies the transaction id (state, exactly-once record);
both commit or neither does, so an answer is only sent for a prediction that is stored,
and a crash at any moment loses no acknowledged prediction.

A retried transaction id is answered from its exactly-once record; :meth:`repair` then
adds its log row if it is missing (written by a version that logged after answering).
Spool files such versions left under ``{data_dir}/prediction-spool`` are replayed, the
same way, when the log starts.

Non-finite floats in ``input_features`` and ``explanation`` are stored as JSON null:
PostgreSQL's JSONB has no NaN.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, func, select, update
from sqlalchemy.engine import Dialect

from shared.db.driver import DriverCursor, DriverSQL
from shared.db.models import Prediction
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.services import prediction_spool as spool

if TYPE_CHECKING:
    from shared.bootstrap import AppContext

log = logging.getLogger(__name__)

_TABLE = cast(Table, Prediction.__table__)
_LABEL_CHUNK = 500
_REPAIR_CHUNK = 500


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

    written: int  # rows this log wrote with their predictions
    repaired: int  # missing rows of replayed predictions added back
    replayed: int  # rows read back from legacy spool files (stored or already there)


class PredictionLog:
    """Writes prediction rows inside the caller's transaction; see the module doc."""

    def __init__(self, db: Database, spool_dir: Path | None = None) -> None:
        self.db = db
        self.spool_dir = spool_dir
        self._engine = db.engine.execution_options(sqlite_begin="immediate")
        self._sql = DriverSQL(db.engine.dialect, [_TABLE])
        self._lock = threading.Lock()
        self._written = 0
        self._repaired = 0
        self._replayed = 0

    @classmethod
    def for_context(cls, ctx: AppContext) -> PredictionLog:
        """A log on the context's database (legacy spool: ``{data_dir}/prediction-spool``)."""
        return cls(ctx.db, ctx.settings.resolved_prediction_spool_dir)

    def write(self, conn: Connection, records: Sequence[PredictionRecord]) -> None:
        """Insert ``records`` in ``conn``'s open transaction (the caller commits)."""
        if not records:
            return
        cursor = DriverCursor(conn, self._sql)
        for columns, group in self._bound([r.to_row() for r in records]).items():
            cursor.insert_many(_TABLE, columns, group)

    def insert_for(self, records: Sequence[PredictionRecord]) -> tuple[str, list[Any]]:
        """PostgreSQL: ``records`` as one ``INSERT … SELECT`` with each value cast to
        its column's type (an ``InsertWith``'s form, for a caller that runs it inside
        its own statement)."""
        # every record has the same columns (``PredictionRecord.to_row``): one group
        ((columns, rows),) = self._bound([r.to_row() for r in records]).items()
        values = [value for row in rows for value in row]
        return _insert_select(self._sql.dialect, columns, len(rows)), values

    def committed(self, count: int) -> None:
        """Count ``count`` rows written by :meth:`write` or :meth:`insert_for` whose
        transaction committed (the caller knows; the log does not)."""
        with self._lock:
            self._written += count

    def repair(self, records: Sequence[PredictionRecord]) -> int:
        """Insert those of ``records`` whose prediction id has no row yet; the number
        inserted. For replayed predictions: the first answer's row may be missing (an
        earlier version's), or the replay is another model's first (shadow scoring of a
        transaction its feature configuration has seen)."""
        rows = [r.to_row() for r in records]
        added = self._insert_missing(rows)
        if added:
            log.info("prediction log: %d row(s) of replayed predictions written", added)
            with self._lock:
                self._repaired += added
        return added

    def start(self) -> None:
        """Replay spool files an earlier version left (rows already stored are
        skipped), deleting each once its rows are in."""
        if self.spool_dir is None:
            return
        for path in spool.pending_files(self.spool_dir):
            try:
                rows = [r for r in spool.read_rows(path) if not isinstance(r, str)]
            except FileNotFoundError:  # another worker replayed it
                continue
            self._insert_missing(rows)
            path.unlink(missing_ok=True)
            with self._lock:
                self._replayed += len(rows)
            log.info("prediction log: replayed %d rows from %s", len(rows), path.name)

    def close(self) -> None:
        """Nothing is held in memory: every row was written with its prediction."""

    def stats(self) -> PredictionLogStats:
        with self._lock:
            return PredictionLogStats(self._written, self._repaired, self._replayed)

    def _insert_missing(self, rows: Sequence[dict[str, Any]]) -> int:
        added = 0
        for start in range(0, len(rows), _REPAIR_CHUNK):
            chunk = rows[start : start + _REPAIR_CHUNK]
            ids = [row["id"] for row in chunk]
            with self.db.writing(), self._engine.begin() as conn:
                stored = set(
                    conn.execute(select(_TABLE.c.id).where(_TABLE.c.id.in_(ids)))
                    .scalars()
                    .all()
                )
                missing = [row for row in chunk if row["id"] not in stored]
                if missing:
                    cursor = DriverCursor(conn, self._sql)
                    for columns, group in self._bound(missing).items():
                        cursor.insert_many(_TABLE, columns, group)
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
                bind = self._sql.bind(_TABLE, name)
                first = values[0]
                if first is not None and all(v is first for v in values):
                    columns.append([bind(first)] * len(values))
                else:
                    columns.append([None if v is None else bind(v) for v in values])
            out[names] = list(zip(*columns, strict=True))
        return out


@functools.cache
def _insert_select(dialect: Dialect, columns: tuple[str, ...], rows: int) -> str:
    types = [_TABLE.c[name].type.compile(dialect) for name in columns]
    casts = [", ".join(f"CAST(:v AS {t})" for t in types)] * rows
    selects = " UNION ALL ".join(f"SELECT {row}" for row in casts)
    body = selects if rows == 1 else f"SELECT * FROM ({selects}) AS r"
    return f"INSERT INTO {_TABLE.name} ({', '.join(columns)}) {body}"


# ---- labels and counts ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelResult:
    updated: int  # prediction rows whose actual_label was set
    unmatched_prediction_ids: list[uuid.UUID] = field(default_factory=list)
    unmatched_transaction_ids: list[str] = field(default_factory=list)


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


def label_predictions(db: Database, items: Sequence[Mapping[str, Any]]) -> LabelResult:
    """Set ``actual_label`` from ``{"prediction_id": uuid | str, "label": bool | 0 | 1}``
    or ``{"transaction_id": str, "label": ...}`` items, in one transaction.

    A transaction id labels every prediction of that transaction. When the same row is
    named twice, the later item wins, and a prediction id wins over a transaction id.
    Invalid items raise ValidationFailed before anything is written."""
    by_id, by_txn = _parse_label_items(items)
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
    )


def count_predictions(db: Database, model_id: uuid.UUID | None = None) -> int:
    """Rows in ``predictions`` (of one model, if given)."""
    stmt = select(func.count()).select_from(_TABLE)
    if model_id is not None:
        stmt = stmt.where(_TABLE.c.model_id == model_id)
    with db.engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
