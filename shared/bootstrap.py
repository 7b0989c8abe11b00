"""One place that wires settings, database and blob store for every entry point.

Built lazily on first use, so importing the Functions app stays cheap at cold start.
Tests swap the whole context with ``set_context``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared.config import Settings, get_settings

if (
    TYPE_CHECKING
):  # SQLAlchemy and the SDKs load when the context is built, not at import
    from shared.db.session import Database
    from shared.jobs.launcher import JobLauncher
    from shared.services.predictions import Predictor
    from shared.storage.base import BlobStore


def _no_launcher() -> JobLauncher:
    from shared.jobs.launcher import NoLauncher

    return NoLauncher()


@dataclass
class AppContext:
    settings: Settings
    db: Database
    blobs: BlobStore
    launcher: JobLauncher = field(default_factory=_no_launcher)
    """Set by the runtime: the local engine (embedded) or Service Bus (Azure)."""
    _predictor: Predictor | None = field(default=None, repr=False)
    _predictor_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def predictor(self) -> Predictor:
        """The worker's scoring service (loaded models, online stores, prediction log),
        built on the first scoring request."""
        if self._predictor is None:
            with self._predictor_lock:
                if self._predictor is None:
                    from shared.gc_freezer import start_gc_freezer
                    from shared.services.prediction_log import PredictionLog
                    from shared.services.predictions import Predictor
                    from shared.services.serving_models import ModelServer

                    log = PredictionLog.for_context(self)
                    log.start()
                    self._predictor = Predictor(
                        self,
                        ModelServer(self, self.settings.model_refresh_seconds),
                        log,
                    )
                    start_gc_freezer(
                        self.settings.gc_freeze_seconds,
                        self.settings.gc_full_collect_seconds,
                    )
        return self._predictor

    @property
    def started_predictor(self) -> Predictor | None:
        """The scoring service if a request has built it (health reports on it)."""
        return self._predictor

    def model_changed(self) -> None:
        """A promotion or rollback happened here: re-check the production model now."""
        if self._predictor is not None:
            self._predictor.models.invalidate()

    def close(self) -> None:
        """Stop what the context started: the online stores' cache warm-ups, then the
        prediction log's writer, once what it holds is written."""
        with self._predictor_lock:
            predictor, self._predictor = self._predictor, None
        if predictor is not None:
            predictor.models.close()
            predictor.log.close()

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        from shared.db.session import Database
        from shared.services.upload_spool import sweep_upload_spool
        from shared.storage.factory import make_blob_store

        sweep_upload_spool(settings)  # what uploads killed mid-way left on disk
        context = cls(
            settings=settings,
            db=Database(
                settings.resolved_database_url,
                settings.database_entra_auth,
                online_durable_commit=settings.online_durable_commit,
            ),
            blobs=make_blob_store(settings),
        )
        if settings.backend == "azure":
            from shared.jobs.launcher import ServiceBusLauncher

            context.launcher = ServiceBusLauncher(
                settings.jobs_queue,
                connection_string=settings.servicebus_connection_string,
                namespace=settings.servicebus_namespace,
            )
        return context


_lock = threading.Lock()
_context: AppContext | None = None


def get_context() -> AppContext:
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = AppContext.from_settings(get_settings())
    return _context


def current_context() -> AppContext | None:
    """The context if one was built (shutdown hooks must not build one)."""
    return _context


def set_context(context: AppContext | None) -> None:
    global _context
    with _lock:
        _context = context
