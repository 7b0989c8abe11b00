"""The composition: settings, database, blob store, job launcher and the services built
from them, once per process.

``function_app.py`` installs how to build it (``install``); routes and activities reach
it through ``container()``. Heavy pieces load when it is first built, not at import, so
indexing the Functions app stays light. Tests hand in their own with ``use``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from shared.config import Settings, get_settings

if TYPE_CHECKING:
    from shared.db.session import Database
    from shared.ports import AlertBus, BlobStore, JobLauncher, Transactions
    from shared.services.alert_delivery import AlertDeliveries
    from shared.services.alert_rules import AlertEngine, AlertRules
    from shared.services.alerts import AlertService
    from shared.services.backtest import Backtests
    from shared.services.bias_audits import BiasAudits
    from shared.services.dataset_delete import DatasetDeletion
    from shared.services.datasets import DatasetService
    from shared.services.drift_audits import DriftAudits
    from shared.services.drift_baselines import DriftBaselines
    from shared.services.fairness import ProtectedAttributes
    from shared.services.feature_log import FeatureLog
    from shared.services.features import FeatureService
    from shared.services.health import HealthService
    from shared.services.jobs import JobService
    from shared.services.model_evaluation import ModelEvaluations
    from shared.services.models import ModelCatalog
    from shared.services.performance import PerformanceService
    from shared.services.predictions import Predictor
    from shared.services.registry import ModelRegistry
    from shared.services.retraining import RetrainingService
    from shared.services.retraining_steps import RetrainingWorkflow
    from shared.services.training import TrainingService


def _no_launcher() -> JobLauncher:
    from shared.adapters.launcher import NoLauncher

    return NoLauncher()


def _in_process_bus() -> AlertBus:
    from shared.adapters.bus.in_process import InProcessAlertBus

    return InProcessAlertBus()


_PORTS = frozenset({"settings", "db", "blobs", "launcher", "bus"})
_SERVICES = (
    "uow",
    "jobs",
    "datasets",
    "deletion",
    "features",
    "health",
    "training",
    "catalog",
    "registry",
    "evaluations",
    "backtests",
    "drift_baselines",
    "drift_audits",
    "performance",
    "alerts",
    "alert_rules",
    "alert_engine",
    "alert_deliveries",
    "feature_log",
    "protected_attributes",
    "bias_audits",
    "retraining",
    "retraining_workflow",
)


@dataclass(eq=False)
class Container:
    """The ports and the services of one process. The services are built on first use
    from the ports; replacing a port (the runtime sets the launcher once it runs, tests
    swap the blob store) rebuilds them. The scoring service is built once."""

    settings: Settings
    db: Database
    blobs: BlobStore
    launcher: JobLauncher = field(default_factory=_no_launcher)
    bus: AlertBus = field(default_factory=_in_process_bus)
    _predictor: Predictor | None = field(default=None, init=False, repr=False)
    _predictor_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False
    )

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name in _PORTS:
            for service in _SERVICES:
                self.__dict__.pop(service, None)

    # -- repositories and services -------------------------------------------------------

    @cached_property
    def uow(self) -> Transactions:
        """Units of work on the database: the metadata repositories, one transaction."""
        from shared.adapters.repositories.uow import SqlTransactions

        return SqlTransactions(self.db)

    @cached_property
    def jobs(self) -> JobService:
        from shared.services.jobs import JobService

        return JobService(self.uow, lambda: self.launcher)

    @cached_property
    def datasets(self) -> DatasetService:
        from shared.services.datasets import DatasetService

        return DatasetService(self.uow, self.blobs, self.settings, self.deletion)

    @cached_property
    def deletion(self) -> DatasetDeletion:
        from shared.services.dataset_delete import DatasetDeletion

        return DatasetDeletion(self.uow, self.blobs)

    @cached_property
    def features(self) -> FeatureService:
        from shared.services.features import FeatureService

        return FeatureService(
            self.uow, self.blobs, self.settings, self.jobs, self.datasets, self.launcher
        )

    @cached_property
    def health(self) -> HealthService:
        from shared.services.health import HealthService

        return HealthService(self.db, self.blobs, self.settings, self._started)

    @cached_property
    def training(self) -> TrainingService:
        from shared.services.training import TrainingService

        return TrainingService(
            self.uow,
            self.blobs,
            self.jobs,
            self.registry,
            self.evaluations,
            self.drift_baselines,
            lambda model_id, feature_set_path, threshold: (
                self.bias_audits.audit_training(model_id, feature_set_path, threshold)
            ),
        )

    @cached_property
    def catalog(self) -> ModelCatalog:
        from shared.services.models import ModelCatalog

        return ModelCatalog(self.uow)

    @cached_property
    def registry(self) -> ModelRegistry:
        from shared.services.online_backfill import start_backfill
        from shared.services.registry import ModelRegistry

        return ModelRegistry(
            self.uow,
            on_change=self.model_changed,
            backfill=lambda model, replace: start_backfill(
                self, model, replace_live=replace
            ),
        )

    @cached_property
    def evaluations(self) -> ModelEvaluations:
        from shared.services.model_evaluation import ModelEvaluations

        return ModelEvaluations(self.uow, self.blobs)

    @cached_property
    def backtests(self) -> Backtests:
        from shared.services.backtest import Backtests

        return Backtests(self.uow, self.blobs, self.jobs, self.datasets, self.launcher)

    @cached_property
    def drift_baselines(self) -> DriftBaselines:
        from shared.services.drift_baselines import DriftBaselines

        return DriftBaselines(self.blobs)

    @cached_property
    def drift_audits(self) -> DriftAudits:
        from shared.services.drift_audits import DriftAudits

        return DriftAudits(
            self.uow,
            self.drift_baselines,
            self.feature_log,
            self.jobs,
            self.launcher,
            self.alert_engine,
        )

    @cached_property
    def performance(self) -> PerformanceService:
        from shared.services.performance import PerformanceService

        return PerformanceService(self.uow, self.feature_log)

    @cached_property
    def alerts(self) -> AlertService:
        from shared.services.alerts import AlertService

        return AlertService(self.uow)

    @cached_property
    def feature_log(self) -> FeatureLog:
        """The prediction log's columnar mirror (export, compaction) and its windows."""
        from shared.adapters.feature_log.parquet_segments import (
            ParquetSegmentFeatureLog,
        )
        from shared.adapters.repositories.uow import SqlTransactions
        from shared.services.feature_log import FeatureLog

        mirror = ParquetSegmentFeatureLog(
            self.db,
            SqlTransactions(self.db),
            self.blobs,
            input_vectors=self.settings.feature_log_input_vectors,
        )
        return FeatureLog(mirror, mirror)

    @cached_property
    def alert_rules(self) -> AlertRules:
        from shared.services.alert_rules import AlertRules

        return AlertRules(self.uow)

    @cached_property
    def alert_engine(self) -> AlertEngine:
        from shared.services.alert_rules import AlertEngine

        return AlertEngine(self.uow, self.bus)

    @cached_property
    def alert_deliveries(self) -> AlertDeliveries:
        from shared.services.alert_delivery import AlertDeliveries

        return AlertDeliveries(
            self.uow,
            attempts=self.settings.webhook_attempts,
            backoff_seconds=self.settings.webhook_backoff_seconds,
            timeout_seconds=self.settings.webhook_timeout_seconds,
        )

    @cached_property
    def protected_attributes(self) -> ProtectedAttributes:
        from shared.services.fairness import ProtectedAttributes

        return ProtectedAttributes(self.uow)

    @cached_property
    def bias_audits(self) -> BiasAudits:
        from shared.services.bias_audits import BiasAudits

        return BiasAudits(
            self.uow,
            self.blobs,
            self.protected_attributes,
            self.jobs,
            self.launcher,
            min_group_count=self.settings.fairness_min_group_count,
        )

    @cached_property
    def retraining(self) -> RetrainingService:
        from shared.services.retraining import RetrainingService

        return RetrainingService(
            self.uow, self.jobs, self.datasets, self.registry, self.retraining_workflow
        )

    @cached_property
    def retraining_workflow(self) -> RetrainingWorkflow:
        """The retraining orchestration's steps (its activities' bodies)."""
        from shared.services.retraining_steps import RetrainingWorkflow

        return RetrainingWorkflow(
            self.uow,
            self.blobs,
            self.jobs,
            self.datasets,
            self.features,
            self.training,
            self.registry,
            self.settings.retraining_max_ap_drop,
        )

    @property
    def predictor(self) -> Predictor:
        """The worker's scoring service (loaded models, online stores, prediction log),
        built on the first scoring request."""
        if self._predictor is None:
            with self._predictor_lock:
                if self._predictor is None:
                    self._predictor = _build_predictor(self)
        return self._predictor

    def _started(self) -> Predictor | None:
        return self._predictor

    def model_changed(self) -> None:
        """A promotion or rollback happened here: re-check the production model now."""
        if self._predictor is not None:
            self._predictor.models.invalidate()

    def close(self) -> None:
        """Stop what the container started: the online stores' cache warm-ups (the
        prediction log holds nothing: each row is written with its prediction)."""
        with self._predictor_lock:
            predictor, self._predictor = self._predictor, None
        if predictor is not None:
            predictor.models.close()


def _build_predictor(c: Container) -> Predictor:
    from shared.gc_freezer import start_gc_freezer
    from shared.services.prediction_log import PredictionLog
    from shared.services.predictions import Predictor
    from shared.services.serving_models import ModelServer

    log = PredictionLog(
        c.db,
        c.settings.resolved_prediction_spool_dir,
        input_vectors=c.settings.feature_log_input_vectors,
    )
    log.start()
    models = ModelServer(
        c.db,
        c.uow,
        c.blobs,
        c.settings.online_warm_entities,
        c.settings.model_refresh_seconds,
    )
    predictor = Predictor(c.db, c.blobs, models, log)
    start_gc_freezer(c.settings.gc_freeze_seconds, c.settings.gc_full_collect_seconds)
    return predictor


def build_container(settings: Settings) -> Container:
    """The container the settings describe: SQLite or PostgreSQL, a folder or Blob
    Storage, no launcher or Service Bus."""
    from shared.adapters.blobs.factory import make_blob_store
    from shared.db.session import Database
    from shared.services.upload_spool import sweep_upload_spool

    sweep_upload_spool(settings)  # what uploads killed mid-way left on disk
    built = Container(
        settings=settings,
        db=Database(
            settings.resolved_database_url,
            settings.database_entra_auth,
            online_durable_commit=settings.online_durable_commit,
            driver_cursor=settings.db_driver_cursor,
        ),
        blobs=make_blob_store(settings),
    )
    if settings.backend == "azure":
        from shared.adapters.launcher import ServiceBusLauncher

        built.launcher = ServiceBusLauncher(
            settings.jobs_queue,
            connection_string=settings.servicebus_connection_string,
            namespace=settings.servicebus_namespace,
        )
        from shared.adapters.bus.azure_service_bus import ServiceBusAlertBus

        built.bus = ServiceBusAlertBus(
            settings.alerts_topic,
            connection_string=settings.servicebus_connection_string,
            namespace=settings.servicebus_namespace,
        )
    return built


class _Slot:
    """The process's one container and how to build it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.current: Container | None = None
        self.factory: Callable[[], Container] = lambda: build_container(get_settings())


_slot = _Slot()


def install(factory: Callable[[], Container]) -> None:
    """How the composition root builds the container (on first use)."""
    _slot.factory = factory


def container() -> Container:
    """The one accessor: the process's container, built on first use."""
    current = _slot.current
    if current is None:
        with _slot.lock:
            if _slot.current is None:
                _slot.current = _slot.factory()
            current = _slot.current
    return current


def built() -> Container | None:
    """The container if one was built (shutdown hooks must not build one)."""
    return _slot.current


def use(replacement: Container | None) -> None:
    """Replace the process's container (tests; None: build again on next use)."""
    with _slot.lock:
        _slot.current = replacement
