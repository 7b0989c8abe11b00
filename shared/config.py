"""Settings for both runtimes, read from the environment (or local.settings.json).

One setting, ``SH_BACKEND``, picks the backend: ``embedded`` (SQLite file and a local
folder, nothing to install) or ``azure`` (PostgreSQL and Blob Storage). Individual
URLs can still be overridden, e.g. the tests run the embedded runtime against PostgreSQL.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Every setting the app reads; documented in README and local.settings.example."""

    model_config = SettingsConfigDict(env_prefix="SH_", extra="ignore")

    backend: Literal["embedded", "azure"] = Field(
        "embedded",
        description="embedded: SQLite + local folder; azure: PostgreSQL + Blob",
    )
    data_dir: Path = Field(
        PROJECT_ROOT / ".data", description="Root folder of the embedded backend"
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default sqlite under data_dir (embedded). "
        "Azure: postgresql+psycopg://user@host:5432/db",
    )
    database_entra_auth: bool = Field(
        False,
        description="PostgreSQL login with a Microsoft Entra token of the app's managed "
        "identity (DefaultAzureCredential) instead of a password",
    )
    online_durable_commit: bool = Field(
        False,
        description="PostgreSQL: each scored transaction (online state and its "
        "prediction-log row) waits for the WAL flush before the answer leaves. Off, "
        "the commit returns before the flush: a crash of the app loses nothing, a "
        "crash of the database server can forget the last moments of acknowledged "
        "predictions (state and log row together); on, /predict could not sustain "
        "200 requests/s on this project's machines (docs: README, Reliability)",
    )
    db_driver_cursor: bool = Field(
        True,
        description="Run the scoring path's hot statements (online state, prediction "
        "log, bulk inserts: COPY on PostgreSQL) on the DBAPI cursor inside "
        "SQLAlchemy's transaction; off, they go through SQLAlchemy Core "
        "(shared/db/driver.py; bench/bench_driver_cursor.py measures both)",
    )
    online_warm_entities: int = Field(
        50_000,
        ge=0,
        description="How many of the most recently updated entity states a scoring "
        "worker loads into its cache, in the background, when it loads a model's "
        "feature configuration (0: none; at most half the cache)",
    )
    model_refresh_seconds: float = Field(
        1.0,
        ge=0,
        description="How often a worker checks which model is in production (0: on "
        "every request); a promotion in the same worker takes effect at once",
    )
    gc_freeze_seconds: float = Field(
        1.0,
        ge=0,
        description="How often a scoring worker freezes what survived garbage "
        "collection, so full collections skip its cached feature states; it also "
        "collects the young generation less often (0: neither; shared/gc_freezer.py; "
        "bench/bench_predict.py: shorter /predict and /predict/explain tails)",
    )
    backfill_gc_pause: bool = Field(
        True,
        description="Pause the garbage collector while the online state is rebuilt "
        "from a dataset (promotion's backfill): it builds millions of long-lived "
        "objects that young collections walk again and again (shared/gc_freezer.py; "
        "bench/bench_features.py times the backfill this way)",
    )
    gc_full_collect_seconds: float = Field(
        3600.0,
        ge=0,
        description="How often the freezer unfreezes everything for one full "
        "collection, which frees reference cycles that died while frozen; it pauses "
        "the worker (180 ms with 126,000 cached entity states measured) (0: never)",
    )
    scoring_path: bool = Field(
        True,
        description="Answer POST /predict ahead of the framework's routing, "
        "dependencies and body parsing (functions/api/scoring_path.py), with the "
        "same answers: less server CPU per request (bench/bench_predict.py; false: "
        "the FastAPI route answers it)",
    )
    gateway_secret: SecretStr | None = Field(
        None,
        description="Azure: the secret API Management adds to every request it "
        "forwards (X-Gateway-Secret); when set, a request without it is refused "
        "with 403, so the Function App answers only through the gateway (unset "
        "locally)",
    )
    prediction_spool_dir: Path | None = Field(
        None,
        description="Where versions before 2026-12 spooled predictions the database "
        "had not taken; replayed at start. Default {data_dir}/prediction-spool "
        "(embedded) or $HOME/data/prediction-spool (azure)",
    )
    upload_spool_dir: Path | None = Field(
        None,
        description="Where dataset uploads wait on disk while they are received and "
        "converted (swept of what a killed process left at start); default "
        "{data_dir}/upload-spool (embedded) or the instance's local temp folder "
        "(azure: the app folder is read-only and $HOME a shared network drive)",
    )
    storage_backend: Literal["local", "azure"] | None = Field(
        None, description="Blob store; defaults to local (embedded) or azure (azure)"
    )
    storage_connection_string: str | None = Field(
        None, description="Azure Storage connection string (Azurite too)"
    )
    storage_account_url: str | None = Field(
        None,
        description="https://<account>.blob.core.windows.net, used with managed "
        "identity (DefaultAzureCredential) when no connection string is set",
    )
    storage_container: str = Field("shadow-hubble", description="Blob container name")
    servicebus_connection_string: str | None = Field(
        None,
        description="Service Bus connection string (Azure: jobs queue, alerts topic)",
    )
    servicebus_namespace: str | None = Field(
        None,
        description="<namespace>.servicebus.windows.net, used with managed identity "
        "when no connection string is set",
    )
    jobs_queue: str = Field(
        "shadow-hubble-jobs", description="Service Bus queue that hands jobs to Durable"
    )
    job_workers: int = Field(2, description="Local runtime: activity worker threads")
    max_upload_mb: int = Field(2048, description="Largest accepted dataset upload, MiB")
    preview_max_rows: int = Field(1000, description="Upper bound of ?rows= on previews")
    log_level: str = Field("INFO", description="Python logging level")
    log_json: bool = Field(True, description="Structured JSON logs (False: plain text)")
    run_migrations: bool = Field(
        True, description="Local runtime upgrades the database schema on start"
    )
    drift_schedule_24h: str = Field(
        "0 5 * * * *",
        description="NCRONTAB schedule (six fields, seconds first, UTC) of the drift "
        "audit over the last 24 hours of every production model (drift_audit_24h)",
    )
    drift_schedule_7d: str = Field(
        "0 15 2 * * *",
        description="NCRONTAB schedule of the drift audit over the last 7 days "
        "(drift_audit_7d)",
    )
    feature_log_export_schedule: str = Field(
        "0 */2 * * * *",
        description="NCRONTAB schedule of the feature log's export "
        "(feature_log_export)",
    )
    feature_log_input_vectors: bool = Field(
        True,
        description="Log each prediction's model input as a packed float32 vector "
        "beside its JSON, so the feature log reads rows not yet exported without "
        "parsing JSON (bench/bench_feature_log.py compares both)",
    )
    bias_audit_schedule: str = Field(
        "0 30 3 * * *",
        description="NCRONTAB schedule of the bias audit of the last 24 hours of "
        "labelled predictions of every production model (bias_audit_24h)",
    )
    fairness_min_group_count: int = Field(
        30,
        ge=1,
        description="Rows a protected group needs to be compared in a bias audit; "
        "smaller groups report INSUFFICIENT_DATA, not a violation",
    )
    alerts_topic: str = Field(
        "alerts", description="Service Bus topic new alerts are published to"
    )
    webhook_attempts: int = Field(
        3,
        description="Alert webhook: POST attempts per delivery (exponential backoff) "
        "before the delivery fails and the bus redelivers or dead-letters it",
    )
    webhook_backoff_seconds: float = Field(
        1.0, description="Alert webhook: wait before the 2nd attempt, doubled after"
    )
    webhook_timeout_seconds: float = Field(
        10.0, description="Alert webhook: timeout of one POST"
    )
    operational_alerts_schedule: str = Field(
        "30 */5 * * * *",
        description="NCRONTAB schedule of the operational alert evaluation (latency "
        "p99, error rate, prediction volume over the last window) and the alert "
        "outbox retry (operational_alerts)",
    )
    operational_alerts_window_minutes: int = Field(
        15, description="Window of the operational alert signals, minutes"
    )
    retraining_max_ap_drop: float = Field(
        0.01,
        ge=0,
        le=1,
        description="Retraining's champion gate: how far the challenger's average "
        "precision may fall below the champion's on the same holdout",
    )
    local_timers: bool = Field(
        True,
        description="The local runtime runs the timer functions on their schedules "
        "(false: only on demand; the Functions host ignores it)",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        if self.backend == "azure":
            raise ValueError("SH_DATABASE_URL is required when SH_BACKEND=azure")
        return f"sqlite:///{self.data_dir / 'shadow_hubble.db'}"

    @property
    def resolved_prediction_spool_dir(self) -> Path:
        if self.prediction_spool_dir is not None:
            return self.prediction_spool_dir
        if self.backend == "azure":
            return Path(os.environ.get("HOME", "/tmp")) / "data" / "prediction-spool"
        return self.data_dir / "prediction-spool"

    @property
    def resolved_upload_spool_dir(self) -> Path:
        if self.upload_spool_dir is not None:
            return self.upload_spool_dir
        if self.backend == "azure":
            return Path(tempfile.gettempdir()) / "shadow-hubble-upload-spool"
        return self.data_dir / "upload-spool"

    @property
    def resolved_storage_backend(self) -> Literal["local", "azure"]:
        if self.storage_backend:
            return self.storage_backend
        return "azure" if self.backend == "azure" else "local"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache to swap them."""
    return Settings()
