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

import logging
import math
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from shared.adapters.feature_log import vectors
from shared.adapters.prediction_log.sql import (
    SqlPredictionTable,
    count_rows,
    set_labels,
)
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.ports import PredictionSink
from shared.services import prediction_spool as spool

log = logging.getLogger(__name__)


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
    input_vector: bytes | None = (
        None  # the model's input as scored (feature_log/vectors)
    )
    # the request's protected attributes {column: value}: logged for bias audits,
    # never a feature, never answered
    protected_values: dict[str, Any] | None = None

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
            "input_vector": self.input_vector,
            **(
                {"protected_values": spool.clean_json(self.protected_values)}
                if self.protected_values
                else {}
            ),
        }


@dataclass(frozen=True)
class PredictionLogStats:
    """A snapshot for the health endpoint and metrics."""

    written: int  # rows this log wrote with their predictions
    repaired: int  # missing rows of replayed predictions added back
    replayed: int  # rows read back from legacy spool files (stored or already there)


class PredictionLog:
    """Writes prediction rows inside the caller's transaction; see the module doc."""

    def __init__(
        self,
        db: Database,
        spool_dir: Path | None = None,
        sink: PredictionSink | None = None,
        *,
        input_vectors: bool = True,
    ) -> None:
        self.db = db
        self.input_vectors = input_vectors
        self.spool_dir = spool_dir
        self.sink: PredictionSink = sink or SqlPredictionTable(db)
        self._lock = threading.Lock()
        self._written = 0
        self._repaired = 0
        self._replayed = 0

    def vector(self, row: npt.NDArray[np.float32], missing: float) -> bytes | None:
        """What a record keeps of the model's scored input ``row``: its packed vector,
        unless the setting is off or missing features were not scored as NaN (the
        vector would then differ from the JSON's nulls)."""
        if not self.input_vectors or not math.isnan(missing):
            return None
        return vectors.pack(row)

    def write(self, conn: Connection, records: Sequence[PredictionRecord]) -> None:
        """Insert ``records`` in ``conn``'s open transaction (the caller commits)."""
        if records:
            self.sink.write(conn, [r.to_row() for r in records])

    def insert_for(self, records: Sequence[PredictionRecord]) -> tuple[str, list[Any]]:
        """``records`` as one ``INSERT … SELECT`` with each value cast to its column's
        type (an ``InsertWith``'s form, for a caller that runs it inside its own
        statement)."""
        return self.sink.insert_for([r.to_row() for r in records])

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
        added = self.sink.insert_missing(rows)
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
            self.sink.insert_missing(rows)
            path.unlink(missing_ok=True)
            with self._lock:
                self._replayed += len(rows)
            log.info("prediction log: replayed %d rows from %s", len(rows), path.name)

    def stats(self) -> PredictionLogStats:
        with self._lock:
            return PredictionLogStats(self._written, self._repaired, self._replayed)


# ---- labels and counts ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelResult:
    updated: int  # prediction rows whose actual_label was set
    unmatched_prediction_ids: list[uuid.UUID] = field(default_factory=list)
    unmatched_transaction_ids: list[str] = field(default_factory=list)
    # the label of each transaction named or reached through a prediction id: what the
    # online states take (a prediction id names its transaction's outcome)
    transaction_labels: dict[str, bool] = field(default_factory=dict)


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


def label_predictions(db: Database, items: Sequence[Mapping[str, Any]]) -> LabelResult:
    """Set ``actual_label`` from ``{"prediction_id": uuid | str, "label": bool | 0 | 1}``
    or ``{"transaction_id": str, "label": ...}`` items, in one transaction.

    A transaction id labels every prediction of that transaction. When the same row is
    named twice, the later item wins, and a prediction id wins over a transaction id.
    Invalid items raise ValidationFailed before anything is written."""
    by_id, by_txn = _parse_label_items(items)
    touched, matched_txns, matched_ids, labelled = set_labels(db, by_txn, by_id)
    return LabelResult(
        updated=len(touched),
        unmatched_prediction_ids=[i for i in by_id if i not in matched_ids],
        unmatched_transaction_ids=[t for t in by_txn if t not in matched_txns],
        transaction_labels={**by_txn, **labelled},
    )


def count_predictions(db: Database, model_id: uuid.UUID | None = None) -> int:
    """Rows in ``predictions`` (of one model, if given)."""
    return count_rows(db, model_id)
