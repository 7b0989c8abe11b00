"""Small Protocols the services depend on, and the types they speak in.

Each port has its own section; its adapters live in ``shared/adapters/<port>/``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Protocol,
    TypeVar,
    overload,
    runtime_checkable,
)

if TYPE_CHECKING:  # annotations only: importing the app must not load SQLAlchemy
    from sqlalchemy import Connection

    from ml.features.config import Float64Array
    from ml.features.online import EntityKey, State
    from shared.db.models import (
        Alert,
        AlertDelivery,
        AlertRule,
        Baseline,
        BiasAudit,
        BiasMetric,
        Dataset,
        DatasetVersion,
        DriftAudit,
        DriftMetric,
        FeatureSet,
        Job,
        MLModel,
        ModelTransition,
        ProtectedAttribute,
        TrainingJob,
    )

# ---- online state ----------------------------------------------------------------------


@dataclass(frozen=True)
class OnlineFeatures:
    transaction_id: str
    features: dict[str, float]
    replayed: bool  # True when this transaction id had been applied before


@dataclass(frozen=True)
class BatchFeatures(Sequence[OnlineFeatures]):
    """``process_many``'s answer, by column: the batch path scores ``values`` and stores
    ``rows`` as they are, where a dict of 53 features per transaction cost it more than
    scoring. Indexing gives an ``OnlineFeatures`` (its dict built then)."""

    transaction_ids: list[str]
    names: tuple[str, ...]  # the columns, in the engine's ``feature_names`` order
    values: Float64Array  # (n, len(names))
    rows: list[list[float]]  # ``values`` as lists, as they are stored and logged
    replayed: list[bool]

    def __len__(self) -> int:
        return len(self.transaction_ids)

    @overload
    def __getitem__(self, i: int) -> OnlineFeatures: ...
    @overload
    def __getitem__(self, i: slice) -> list[OnlineFeatures]: ...
    def __getitem__(self, i: int | slice) -> OnlineFeatures | list[OnlineFeatures]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return OnlineFeatures(
            self.transaction_ids[i],
            dict(zip(self.names, self.rows[i], strict=True)),
            self.replayed[i],
        )


_T_contra = TypeVar("_T_contra", contravariant=True)


class CommitWith(Protocol[_T_contra]):
    """Work that must commit with an applied transaction, in its database transaction."""

    def __call__(self, applied: _T_contra, conn: Connection, /) -> None: ...


@runtime_checkable
class InsertWith(CommitWith[_T_contra], Protocol[_T_contra]):
    """A ``CommitWith`` that can also be said as one ``INSERT … SELECT`` (text with
    ``:name`` placeholders, its values in placeholder order, no WHERE clause): an
    adapter may run it in the statement that applies the transaction. Scored before
    the apply: wasted when the transaction was known."""

    def insert_for(self, applied: _T_contra, /) -> tuple[str, Sequence[Any]]: ...


class OnlineStateStore(Protocol):
    """Per-entity state of one feature configuration (``namespace``), changed exactly
    once per transaction id. Events come normalized (``normalize_transaction``)."""

    namespace: str

    def apply(
        self,
        event: dict[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None,
    ) -> OnlineFeatures:
        """Features from the state before ``event``, then fold it in; a known
        transaction id gets its stored features back and changes nothing."""
        ...

    def apply_many(
        self,
        events: list[dict[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None,
    ) -> BatchFeatures:
        """``apply`` of many, in order, in one database transaction."""
        ...

    def add_label(self, transaction_id: str, label: Any) -> bool:
        """Fold a late label into the transaction's merchant state; False when the
        transaction was never applied here."""
        ...

    def replace(self, states: Mapping[EntityKey, State]) -> int:
        """The namespace's whole state, replaced (a backfill); known ids forgotten."""
        ...

    def states(self, keys: list[EntityKey]) -> dict[EntityKey, State]: ...
    def is_live(self) -> bool: ...
    def clear(self) -> None: ...
    def warm(self, limit: int) -> int:
        """Cache the states of up to ``limit`` entities updated most recently."""
        ...

    def stop_warming(self) -> None: ...

    @property
    def cached_entities(self) -> int: ...

    @property
    def cache_capacity(self) -> int: ...


# ---- prediction log --------------------------------------------------------------------


class PredictionSink(Protocol):
    """Where prediction rows go, with the transaction that produced them."""

    def write(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert in ``conn``'s open transaction (the caller commits)."""
        ...

    def insert_for(self, rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
        """The rows as one ``INSERT … SELECT`` (an ``InsertWith``'s form)."""
        ...

    def insert_missing(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert those rows whose id is not stored yet; how many were."""
        ...


# ---- logged features (shared/adapters/feature_log/) ------------------------------------


@dataclass(frozen=True)
class LoggedWindow:
    """The predictions one model logged in ``[start, end)`` of ``created_at``, one row
    each, as columns: what drift, performance and bias audits read."""

    feature_names: tuple[str, ...]
    features: Any  # float32 (rows, len(feature_names)); NaN where missing
    scores: Any  # float64 (rows,)
    labels: Any  # float64 (rows,): 1.0, 0.0, NaN while unlabelled
    created_at_ns: Any  # int64 (rows,), epoch nanoseconds UTC
    latency_ms: Any  # float64 (rows,); NaN where unknown

    @property
    def rows(self) -> int:
        return len(self.scores)


class FeatureLogReader(Protocol):
    """Reads the logged predictions of a window back as columns."""

    def window(
        self,
        model_id: uuid.UUID,
        start: datetime,
        end: datetime,
        feature_names: Sequence[str],
    ) -> LoggedWindow:
        """Features absent from a row (or from the log) read as NaN."""
        ...


class FeatureLogMirror(Protocol):
    """Keeps a columnar copy of the prediction log that reads faster than its rows."""

    def export(self, now: datetime | None = None) -> int:
        """Copy the rows not mirrored yet (and any committed late); how many."""
        ...

    def compact(self) -> int:
        """Merge each closed hour's segments into one; how many segments went."""
        ...


# ---- blob storage (shared/adapters/blobs/) ---------------------------------------------


class StorageError(Exception):
    """A blob operation failed; callers turn it into a 5xx or a FAILED job."""


class BlobNotFound(StorageError):
    pass


class BlobStore(Protocol):
    """Paths are '/'-separated keys such as ``datasets/{id}/v1.0/data.parquet``."""

    def upload_file(self, path: str, source: Path) -> None:
        """Store a local file under ``path``, streamed rather than read whole."""

    def download_file(self, path: str, target: Path) -> None:
        """Copy the blob at ``path`` to a local file (streamed)."""

    def put_bytes(self, path: str, data: bytes) -> None: ...

    def get_bytes(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; return how many went."""

    def ping(self) -> None:
        """Raise StorageError when the store cannot be reached."""


# ---- job launcher (shared/adapters/launcher.py) ----------------------------------------


class JobLauncher(Protocol):
    """Hands a job to whatever runs orchestrations; the job id is the instance id."""

    def launch(
        self, orchestrator: str, job_id: str, payload: dict[str, Any]
    ) -> None: ...

    def cancel(self, job_id: str, reason: str) -> None: ...


# ---- metadata repositories (shared/adapters/repositories/) -----------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing and the listing's total."""

    items: list[T]
    page: int
    page_size: int
    total: int

    @property
    def meta(self) -> dict[str, int]:
        return {
            "page": self.page,
            "page_size": self.page_size,
            "total": self.total,
            "total_pages": math.ceil(self.total / self.page_size) if self.total else 0,
        }


class Duplicate(Exception):
    """A write broke a unique constraint (a version taken, a second PRODUCTION model)."""


class DatasetRepository(Protocol):
    """Datasets and their versions. Listings leave DELETING tombstones out."""

    def get(self, dataset_id: uuid.UUID) -> Dataset | None: ...
    def get_for_update(self, dataset_id: uuid.UUID) -> Dataset | None:
        """The row, locked until the unit of work ends (tombstones included)."""
        ...

    def id_named(self, name: str) -> uuid.UUID | None: ...
    def add(self, dataset: Dataset) -> None: ...
    def add_version(self, version: DatasetVersion) -> None:
        """Written now (flushed), so a failure shows before the blob is uploaded."""
        ...

    def versions(self, dataset_id: uuid.UUID) -> list[DatasetVersion]:
        """Oldest first."""
        ...

    def version_count(self, dataset_id: uuid.UUID) -> int: ...
    def version(self, dataset_id: uuid.UUID, version: str) -> DatasetVersion | None: ...
    def page(
        self, page: int, page_size: int, name_contains: str | None
    ) -> Page[Dataset]:
        """Newest first."""
        ...

    def delete(self, dataset: Dataset) -> None:
        """The dataset row with its version rows."""
        ...


class FeatureSetRepository(Protocol):
    def get(self, feature_set_id: uuid.UUID) -> FeatureSet | None: ...
    def add(self, feature_set: FeatureSet) -> None: ...
    def page(
        self, page: int, page_size: int, dataset_id: uuid.UUID | None
    ) -> Page[FeatureSet]:
        """Newest first."""
        ...

    def of_dataset(self, dataset_id: uuid.UUID) -> list[FeatureSet]:
        """Oldest first."""
        ...

    def any_of_dataset(self, dataset_id: uuid.UUID) -> bool: ...
    def configs(self) -> list[dict[str, Any]]:
        """Every feature set's feature configuration."""
        ...

    def delete(self, feature_set_ids: Sequence[uuid.UUID]) -> None: ...


class JobRepository(Protocol):
    """Jobs of every kind; a training job's detail row comes with it."""

    def add(self, job: Job) -> None: ...
    def get(self, job_id: uuid.UUID) -> Job | None: ...
    def get_training(self, job_id: uuid.UUID) -> TrainingJob | None: ...
    def status(self, job_id: uuid.UUID) -> str | None: ...
    def page(
        self, page: int, page_size: int, kind: str | None, status: str | None
    ) -> Page[Job]:
        """Newest first; ``kind="training"`` lists ``TrainingJob`` rows."""
        ...

    def unfinished(self) -> list[Job]: ...
    def unfinished_training_on(
        self, feature_set_ids: Sequence[uuid.UUID]
    ) -> list[TrainingJob]: ...
    def delete_training_of(
        self, model_ids: Sequence[uuid.UUID], feature_set_ids: Sequence[uuid.UUID]
    ) -> None:
        """The training jobs that made these models or trained on these sets."""
        ...


class ModelRepository(Protocol):
    """Registered models with their baselines, transitions, metrics and alerts."""

    def get(self, model_id: uuid.UUID) -> MLModel | None: ...
    def get_for_update(self, model_id: uuid.UUID) -> MLModel | None:
        """The model, its row locked until the transaction ends (PostgreSQL)."""
        ...

    def add(self, model: MLModel) -> None: ...
    def versions(self, name: str) -> list[str]: ...
    def production_id(self, name: str | None = None) -> uuid.UUID | None:
        """The PRODUCTION model of ``name``; without one, the latest promoted."""
        ...

    def previous_production(self, model: MLModel) -> MLModel | None:
        """The model of the same name that left PRODUCTION last."""
        ...

    def page(
        self, page: int, page_size: int, name: str | None, status: str | None
    ) -> Page[MLModel]:
        """Newest first."""
        ...

    def trained_on(self, feature_set_ids: Sequence[uuid.UUID]) -> list[MLModel]:
        """Oldest first."""
        ...

    def has_predictions(self, model_id: uuid.UUID) -> bool: ...
    def active_baselines(self, model_id: uuid.UUID) -> list[Baseline]: ...
    def add_baselines(self, baselines: Sequence[Baseline]) -> None: ...
    def add_transition(self, transition: ModelTransition) -> None: ...
    def transitions_of_name(self, name: str) -> list[ModelTransition]:
        """Oldest first."""
        ...

    def delete(self, model_ids: Sequence[uuid.UUID]) -> None:
        """The models with their own rows: alerts, rules, metrics, baselines,
        transitions (their training jobs go through ``JobRepository``)."""
        ...


class DriftRepository(Protocol):
    """Drift audits and their drift_metrics rows (which share the audit's computed_at)."""

    def add_audit(self, audit: DriftAudit, metrics: Sequence[DriftMetric]) -> None: ...
    def get_audit(self, audit_id: uuid.UUID) -> DriftAudit | None: ...
    def latest_audit(
        self, model_id: uuid.UUID, window: str, with_data: bool = False
    ) -> DriftAudit | None:
        """The newest audit of the model and window (``with_data``: not NO_DATA)."""
        ...

    def history(
        self, model_id: uuid.UUID, window: str, feature: str | None, audits: int
    ) -> list[tuple[DriftAudit, DriftMetric]]:
        """FEATURE rows of the model's latest ``audits`` audits of the window, oldest
        first, with their audit."""
        ...

    def production_model_ids(self) -> list[uuid.UUID]: ...


class AlertRepository(Protocol):
    def add(self, alert: Alert) -> None: ...
    def get(self, alert_id: uuid.UUID) -> Alert | None: ...
    def page(
        self,
        page: int,
        page_size: int,
        status: str | None,
        severity: str | None,
        alert_type: str | None,
        model_id: uuid.UUID | None,
    ) -> Page[Alert]:
        """Newest first."""
        ...


@dataclass(frozen=True)
class PredictionActivity:
    """A production model's logged predictions over a window: what the operational
    alert sources read."""

    model_id: uuid.UUID
    predictions: int
    latency_p99_ms: float | None


class AlertRuleRepository(Protocol):
    """Alert rules, the open alert a rule repeats into, the alert outbox and the bus
    consumers' delivery records."""

    def add(self, rule: AlertRule) -> None: ...
    def get(self, rule_id: uuid.UUID) -> AlertRule | None: ...
    def delete(self, rule: AlertRule) -> None: ...
    def page(self, page: int, page_size: int) -> Page[AlertRule]: ...
    def matching(self, source: str, model_id: uuid.UUID | None) -> list[AlertRule]: ...
    def open_alert(
        self, rule_id: uuid.UUID, model_id: uuid.UUID | None, since: datetime
    ) -> Alert | None: ...
    def unpublished(self, limit: int) -> list[Alert]: ...
    def delivery(self, consumer: str, message_id: str) -> AlertDelivery | None: ...
    def add_delivery(self, delivery: AlertDelivery) -> None: ...
    def deliveries(self, alert_id: uuid.UUID) -> list[AlertDelivery]: ...
    def prediction_activity(
        self, since: datetime, until: datetime
    ) -> list[PredictionActivity]: ...


class AlertBus(Protocol):
    """Publishes a new alert's message to the ``alerts`` topic (message id = alert
    id); raises when the bus did not accept it, so the outbox keeps it pending."""

    def publish(self, alert: dict[str, Any]) -> None: ...


class ProtectedAttributeRepository(Protocol):
    """Protected attributes' configurations, by their unique name."""

    def get(self, attribute_name: str) -> ProtectedAttribute | None: ...
    def add(self, attribute: ProtectedAttribute) -> None: ...
    def page(
        self, page: int, page_size: int, active: bool | None
    ) -> Page[ProtectedAttribute]:
        """By name."""
        ...

    def active(self) -> list[ProtectedAttribute]:
        """By name."""
        ...


@dataclass(frozen=True)
class LabelledPredictions:
    """The labelled predictions of a window, in time order: the decision, the actual
    label and the protected values logged with each (None when none were given)."""

    decisions: list[bool]
    labels: list[bool]
    protected: list[dict[str, Any] | None]


class BiasRepository(Protocol):
    """Bias audits and their bias_metrics rows (which name their audit)."""

    def add_audit(self, audit: BiasAudit, metrics: Sequence[BiasMetric]) -> None: ...
    def get_audit(self, audit_id: uuid.UUID) -> BiasAudit | None: ...
    def latest_audit(
        self,
        model_id: uuid.UUID,
        source: str | None = None,
        with_data: bool = False,
    ) -> BiasAudit | None:
        """The newest audit of the model (of that source; ``with_data``: not
        NO_DATA)."""
        ...

    def metrics(self, audit_id: uuid.UUID) -> list[BiasMetric]:
        """By attribute, then metric."""
        ...

    def labelled_predictions(
        self, model_id: uuid.UUID, start: datetime, end: datetime
    ) -> LabelledPredictions:
        """The model's predictions with ``created_at`` in ``[start, end)`` that have
        an actual label."""
        ...

    def production_model_ids(self) -> list[uuid.UUID]: ...


class UnitOfWork(Protocol):
    """One database transaction and the repositories that work inside it."""

    datasets: DatasetRepository
    feature_sets: FeatureSetRepository
    jobs: JobRepository
    models: ModelRepository
    drift: DriftRepository
    alerts: AlertRepository
    alert_rules: AlertRuleRepository
    protected_attributes: ProtectedAttributeRepository
    bias: BiasRepository

    def flush(self) -> None:
        """Write pending changes now (raises ``Duplicate``), still uncommitted."""
        ...


class Transactions(Protocol):
    """Opens units of work: committed when the block ends normally, rolled back on an
    error; a broken unique constraint raises ``Duplicate``. ``write=True`` for
    read-then-write work that races with other writers."""

    def __call__(self, write: bool = False) -> AbstractContextManager[UnitOfWork]: ...
