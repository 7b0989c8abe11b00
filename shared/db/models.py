"""SQLAlchemy models: the spec's schema plus the tables the rest of the platform needs.

The spec's tables keep its column names. Additions: dataset_versions (every uploaded
version), jobs (every long operation, training included; training_jobs holds a training
job's detail keyed by the job id), orchestration_instances/events (the local Durable
engine's history), model_transitions (who promoted what, when, why), alert_rules,
drift_audits and bias_audits (one row per audit), and the online feature store tables
(feature_entity_state, feature_entity_snapshots, feature_entity_events,
online_transactions). ``predictions`` is range-partitioned by created_at on PostgreSQL
(see the migration), so its primary key includes created_at.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    case,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db.types import JSONType, UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType, list[Any]: JSONType}


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


class User(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str] = mapped_column(String(255), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(50), default="data_scientist")
    created_at: Mapped[datetime] = _created()


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[str] = mapped_column(String(50), default="1.0")
    storage_path: Mapped[str] = mapped_column(String(500))
    row_count: Mapped[int | None] = mapped_column(Integer)
    schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(50), default="ACTIVE")
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)
    id: Mapped[uuid.UUID] = _id()
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(50))
    description: Mapped[str | None] = mapped_column(Text)
    storage_path: Mapped[str] = mapped_column(String(500))
    source_filename: Mapped[str | None] = mapped_column(String(500))
    source_format: Mapped[str] = mapped_column(String(20))
    size_bytes: Mapped[int] = mapped_column(Integer)
    row_count: Mapped[int] = mapped_column(Integer)
    schema: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()


class FeatureSet(Base):
    __tablename__ = "feature_sets"
    id: Mapped[uuid.UUID] = _id()
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    dataset_version: Mapped[str | None] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(255))
    feature_config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    features: Mapped[list[Any] | None] = mapped_column(JSONType)
    statistics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    storage_path: Mapped[str | None] = mapped_column(String(500))
    feature_count: Mapped[int | None] = mapped_column(Integer)
    row_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(50), default="PENDING")
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime] = _created()


class MLModel(Base):
    __tablename__ = "ml_models"
    __table_args__ = (
        UniqueConstraint("name", "version"),
        # Exactly one PRODUCTION model per name, enforced by the database.
        Index(
            "uq_ml_models_one_production",
            "name",
            unique=True,
            postgresql_where=text("status = 'PRODUCTION'"),
            sqlite_where=text("status = 'PRODUCTION'"),
        ),
    )
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(50))
    algorithm: Mapped[str] = mapped_column(String(100))
    hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    storage_path: Mapped[str] = mapped_column(String(500))
    feature_set_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("feature_sets.id")
    )
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(50), default="TRAINED", index=True)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class ModelTransition(Base):
    __tablename__ = "model_transitions"
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str] = mapped_column(String(50))
    to_status: Mapped[str] = mapped_column(String(50))
    action: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str | None] = mapped_column(Text)
    override_baselines: Mapped[bool] = mapped_column(Boolean, default=False)
    actor: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()


class Baseline(Base):
    __tablename__ = "baselines"
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE"), index=True
    )
    metric_name: Mapped[str] = mapped_column(String(100))
    threshold: Mapped[float] = mapped_column(Float)
    operator: Mapped[str] = mapped_column(String(10))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        Index("idx_predictions_model_date", "model_id", "created_at"),
        Index("idx_predictions_transaction", "transaction_id"),
        # the labelled rows of a window, read by id without touching their JSON
        Index(
            "idx_predictions_labelled",
            "model_id",
            "created_at",
            "id",
            "actual_label",
            sqlite_where=text("actual_label IS NOT NULL"),
            postgresql_where=text("actual_label IS NOT NULL"),
        ),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, primary_key=True, default=utcnow
    )
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ml_models.id"))
    transaction_id: Mapped[str | None] = mapped_column(String(255))
    input_features: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # the model's input as scored, float32 in its feature order (feature_log/vectors.py)
    input_vector: Mapped[bytes | None] = mapped_column(LargeBinary)
    fraud_score: Mapped[float] = mapped_column(Float)
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    actual_label: Mapped[bool | None] = mapped_column(Boolean)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    # the request's protected attributes {column: value}, for bias audits only: never
    # a feature, never answered
    protected_values: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class FeatureLogSegment(Base):
    """One Parquet segment of the logged features' columnar mirror: the rows of one
    model with ``created_at`` in ``[created_from, created_to)``, all inside ``hour``
    (shared/adapters/feature_log/parquet_segments.py)."""

    __tablename__ = "feature_log_segments"
    __table_args__ = (
        UniqueConstraint("model_id", "created_from", name="uq_feature_log_from"),
        Index("idx_feature_log_model_hour", "model_id", "hour"),
    )
    path: Mapped[str] = mapped_column(String(500), primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    created_from: Mapped[datetime] = mapped_column(UTCDateTime)
    created_to: Mapped[datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer)
    written_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DriftMetric(Base):
    __tablename__ = "drift_metrics"
    __table_args__ = (Index("idx_drift_model_date", "model_id", "computed_at"),)
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    drift_type: Mapped[str] = mapped_column(String(50))
    feature_name: Mapped[str | None] = mapped_column(String(100))
    metric_name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(50))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DriftAudit(Base):
    """One drift audit of a model over a window: its status and where its result JSON
    and HTML report are stored; its drift_metrics rows share its computed_at."""

    __tablename__ = "drift_audits"
    __table_args__ = (
        Index("idx_drift_audits_model_window", "model_id", "window", "computed_at"),
    )
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    window: Mapped[str] = mapped_column(String(20))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(50))
    row_count: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result_path: Mapped[str] = mapped_column(String(500))
    report_path: Mapped[str | None] = mapped_column(String(500))


class BiasMetric(Base):
    __tablename__ = "bias_metrics"
    __table_args__ = (Index("idx_bias_model_attr", "model_id", "protected_attribute"),)
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    protected_attribute: Mapped[str] = mapped_column(String(100))
    metric_name: Mapped[str] = mapped_column(String(100))
    group_values: Mapped[dict[str, Any]] = mapped_column(JSONType)
    overall_value: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(50))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    audit_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("bias_audits.id", ondelete="CASCADE"), index=True
    )


class BiasAudit(Base):
    """One bias audit of a model: its source (the stored test rows, or the labelled
    predictions of a window), status, and where its result JSON and HTML report are
    stored; its bias_metrics rows name it."""

    __tablename__ = "bias_audits"
    __table_args__ = (
        Index("idx_bias_audits_model_source", "model_id", "source", "computed_at"),
    )
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    source: Mapped[str] = mapped_column(String(20))
    window: Mapped[str | None] = mapped_column(String(20))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(50))
    row_count: Mapped[int] = mapped_column(BigInteger)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    result_path: Mapped[str] = mapped_column(String(500))
    report_path: Mapped[str | None] = mapped_column(String(500))


class ProtectedAttribute(Base):
    __tablename__ = "protected_attributes"
    id: Mapped[uuid.UUID] = _id()
    attribute_name: Mapped[str] = mapped_column(String(100), unique=True)
    column_name: Mapped[str] = mapped_column(String(100))
    groups: Mapped[list[Any]] = mapped_column(JSONType)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSONType)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        Index("idx_alerts_status", "status", "created_at"),
        Index("idx_alerts_publish_state", "publish_state"),
    )
    id: Mapped[uuid.UUID] = _id()
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ml_models.id"))
    rule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alert_rules.id"))
    alert_type: Mapped[str] = mapped_column(String(50))
    severity: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(255))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(50), default="ACTIVE")
    acknowledged_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    # rule deduplication: a repeat within the rule's cooldown counts here
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_name: Mapped[str | None] = mapped_column(String(255))
    ack_note: Mapped[str | None] = mapped_column(Text)
    dismissed_reason: Mapped[str | None] = mapped_column(Text)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # outbox: PENDING until the bus accepted the alert's message, then PUBLISHED
    publish_state: Mapped[str] = mapped_column(String(20), default="PENDING")
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)


class AlertDelivery(Base):
    """What a bus consumer did with an alert's message; one row per consumer and
    message id, so a redelivered message is handled once."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("consumer", "message_id"),)
    id: Mapped[uuid.UUID] = _id()
    consumer: Mapped[str] = mapped_column(String(50))
    message_id: Mapped[str] = mapped_column(String(100))
    alert_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    outcome: Mapped[str] = mapped_column(String(50))
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()


class AlertRule(Base):
    __tablename__ = "alert_rules"
    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(255))
    alert_type: Mapped[str] = mapped_column(String(50))
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ml_models.id", ondelete="CASCADE")
    )
    metric_name: Mapped[str] = mapped_column(String(100))
    operator: Mapped[str] = mapped_column(String(10))
    threshold: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(20))
    channels: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = _created()
    # the rule language: source, {op, value} as given, dedup window, optional action
    source: Mapped[str | None] = mapped_column(String(50))
    condition: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    cooldown_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    action: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Job(Base):
    """Every kind of long work (features, training, backfills, audits): one state machine,
    PENDING, RUNNING, then COMPLETED, FAILED or CANCELLED. Kind-specific detail lives in
    its own table keyed by the job id (joined-table inheritance, e.g. TrainingJob)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("idx_jobs_kind_status", "kind", "status"),)
    id: Mapped[uuid.UUID] = _id()
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(50), default="PENDING")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    input: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )
    # kinds without a detail table all load as Job
    __mapper_args__ = {
        "polymorphic_on": case((kind == "training", "training"), else_="job"),
        "polymorphic_identity": "job",
    }


class TrainingJob(Job):
    """A training job's detail; status, progress and times are the Job's."""

    __tablename__ = "training_jobs"
    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(255))
    feature_set_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("feature_sets.id")
    )
    algorithm: Mapped[str] = mapped_column(String(100))
    hyperparameters: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ml_models.id"))
    __mapper_args__ = {"polymorphic_identity": "training"}

    def __init__(self, **values: Any) -> None:
        values.setdefault("kind", "training")  # polymorphic_on is an expression
        super().__init__(**values)


class OrchestrationInstance(Base):
    """Local Durable engine: one row per orchestration instance."""

    __tablename__ = "orchestration_instances"
    instance_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    input: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(50), default="Pending", index=True)
    output: Mapped[str | None] = mapped_column(Text)
    custom_status: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    terminate_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )


class OrchestrationEvent(Base):
    """Local Durable engine: the recorded history, replayed by the SDK's executor."""

    __tablename__ = "orchestration_events"
    instance_id: Mapped[str] = mapped_column(
        ForeignKey("orchestration_instances.instance_id", ondelete="CASCADE"),
        primary_key=True,
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    event: Mapped[str] = mapped_column(Text)


class FeatureEntityState(Base):
    """Online feature store: the head of each entity's state (user, merchant, device),
    one small row each, updated by every transaction of the entity. The state itself is
    a snapshot (``feature_entity_snapshots``) plus the events after it.

    ``namespace`` identifies the feature configuration the state was built for, so a
    model trained with other windows never reads state pruned for a different one.
    """

    __tablename__ = "feature_entity_state"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # head: events applied so far; those after the snapshot are in feature_entity_events
    seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    snapshot_seq: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # random per row life: a cached state is current only for the same (gen, seq)
    gen: Mapped[int] = mapped_column(BigInteger, server_default="0")


class FeatureEntitySnapshot(Base):
    """An entity's state after event ``snapshot_seq`` of head generation ``gen`` (none:
    no history before the logged events). Apart from its head because a busy
    merchant's state is megabytes, and SQLite rewrites a whole row, overflow pages
    included, when one column of it changes: with the two together every transaction
    of that merchant rewrote its state just to bump the head."""

    __tablename__ = "feature_entity_snapshots"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    gen: Mapped[int] = mapped_column(BigInteger)
    snapshot_seq: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[bytes] = mapped_column(LargeBinary)


class FeatureEntityEvent(Base):
    """Events applied to an entity's state since its snapshot, in order: a transaction
    (its normalised fields), a batch's transactions of the entity (a JSON array of
    them, one row per entity and batch) or a late label. Replaying them onto the
    snapshot rebuilds the state, so each scored transaction writes small rows instead
    of the state."""

    __tablename__ = "feature_entity_events"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event: Mapped[bytes] = mapped_column(LargeBinary)


class OnlineTransaction(Base):
    """Transactions already applied to the online state: makes updates exactly-once."""

    __tablename__ = "online_transactions"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    transaction_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    # plain JSON also on PostgreSQL: written once per scored transaction, read back
    # only for a retry, never queried inside (JSONB's parsing cost the most there)
    entity_keys: Mapped[list[Any]] = mapped_column(JSON)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = _created()
