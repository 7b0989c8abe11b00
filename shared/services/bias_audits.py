"""Bias audits: the active protected attributes audited over a model's decisions.

Two sources. ``test_set``: the model's stored test rows (``models/{id}/evaluation.parquet``)
joined by transaction id with the protected columns its feature set carries, decided
at the model's threshold. ``predictions``: the labelled predictions of a window with
the protected values logged with each (``predictions.protected_values``).

Each active attribute is audited by ``ml.fairness.audit_attribute``: a column the data
lacks is MISSING_COLUMN (the rest are audited), no labelled row is NO_DATA, a group
under the minimum count (``SH_FAIRNESS_MIN_GROUP_COUNT``) is INSUFFICIENT_DATA. The
result JSON and HTML report go to blob storage; the audit row, its bias_metrics rows
and, when a predictions audit's status rose to WARNING or CRITICAL since the last one of
that model with data, a BIAS alert are written in one transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.db.models import BiasAudit
from shared.db.types import utcnow
from shared.errors import AppError, NotFound, ValidationFailed, field_error
from shared.services.bias_commands import (
    PREDICTIONS,
    TEST_SET,
    BiasAuditCommand,
    BiasMetricsQuery,
)
from shared.services.bias_data import (
    AuditData,
    no_evaluation,
    read_predictions,
    read_test_set,
)
from shared.services.bias_records import (
    attribute_result,
    error_summary,
    metric_rows,
    overall_status,
    render_report,
    status_alert,
    summary,
)
from shared.services.drift_baselines import MonitoredModel, monitored_model
from shared.services.drift_views import parse_uuid
from shared.services.model_evaluation import evaluation_path
from shared.services.monitoring_window import Window, resolve_window
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.ports import BlobStore, JobLauncher, Transactions
    from shared.services.fairness import AttributeSpec, ProtectedAttributes
    from shared.services.jobs import JobService

log = logging.getLogger(__name__)

JOB_KIND = "bias_audit"
ORCHESTRATOR = "bias_orchestrator"
SOURCES = (TEST_SET, PREDICTIONS)


def result_path(audit_id: uuid.UUID) -> str:
    return f"bias/audits/{audit_id}/result.json"


def report_path(audit_id: uuid.UUID) -> str:
    return f"bias/audits/{audit_id}/report.html"


def report_url(audit_id: uuid.UUID | str) -> str:
    return f"/api/v1/bias/reports/{audit_id}"


@dataclass(frozen=True)
class AuditAccepted:
    job_id: str
    status: str
    estimated_time_seconds: float


@dataclass(frozen=True)
class BiasMetricsView:
    """GET /bias/metrics: the spec's shape, plus where the audit came from."""

    model_id: str
    protected_attributes: list[dict[str, Any]]
    computed_at: str | None
    audit_id: str
    source: str
    report_url: str


class BiasAudits:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        attributes: ProtectedAttributes,
        jobs: JobService,
        launcher: JobLauncher,
        min_group_count: int = 30,
        replicates: int = 1000,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.attributes = attributes
        self.jobs = jobs
        self.launcher = launcher
        self.min_group_count = min_group_count
        self.replicates = replicates

    # -- requests --------------------------------------------------------------------

    def request(self, cmd: BiasAuditCommand) -> AuditAccepted:
        """Validate, record the job and hand it to the launcher (the 202 body)."""
        if cmd.source not in SOURCES:
            raise ValidationFailed(
                f"source must be one of {', '.join(SOURCES)}.",
                field_error("source", f"one of {', '.join(SOURCES)}"),
            )
        windowed = cmd.window or cmd.window_start or cmd.window_end
        if cmd.source == TEST_SET and windowed:
            raise ValidationFailed(
                "A test_set audit reads the model's test rows: it takes no window.",
                field_error("window", "only with source predictions"),
            )
        window = (
            resolve_window(cmd.window, cmd.window_start, cmd.window_end)
            if cmd.source == PREDICTIONS
            else None
        )
        model = monitored_model(self.uow, cmd.model_id)
        if cmd.source == TEST_SET and not self.blobs.exists(evaluation_path(model.id)):
            raise no_evaluation(model.id)
        job_id = uuid.uuid4()
        payload: dict[str, Any] = {
            "job_id": str(job_id),
            "model_id": str(model.id),
            "source": cmd.source,
        }
        if window is not None:
            payload |= {
                "window": window.label,
                "window_start": iso(window.start),
                "window_end": iso(window.end),
            }
        self.jobs.create(JOB_KIND, payload, job_id)
        self.launcher.launch(ORCHESTRATOR, str(job_id), {"job_id": str(job_id)})
        return AuditAccepted(str(job_id), "PENDING", 5.0)

    def job(self, job_id: str) -> dict[str, Any]:
        """A bias audit job's status (404 for a job of another kind)."""
        return self.jobs.get(job_id, JOB_KIND)

    def run_job(self, job_id: str) -> dict[str, Any]:
        """The activity body; a re-run finds the audit it stored (the job id is its id)."""
        from shared.services.jobs import JobCancelled

        try:
            payload = self.jobs.start(job_id, "reading the decisions")
        except JobCancelled:
            return {"status": "CANCELLED"}
        window = None
        if payload.get("window_start"):
            window = Window(
                payload["window"],
                datetime.fromisoformat(payload["window_start"]),
                datetime.fromisoformat(payload["window_end"]),
            )
        try:
            result = self.audit(
                payload["model_id"], payload["source"], window, uuid.UUID(job_id)
            )
        except AppError as exc:
            self.jobs.fail(job_id, exc.message)
            return {"status": "FAILED", "error": exc.message}
        done = {
            "audit_id": result["audit_id"],
            "model_id": result["model_id"],
            "source": result["source"],
            "bias_status": result["status"],
            "rows": result["rows"],
            "alert_id": result.get("alert_id"),
            "report_url": report_url(result["audit_id"]),
        }
        self.jobs.complete(job_id, done)
        return {"status": "COMPLETED", **done}

    def run_scheduled(self, window: str = "24h") -> int:
        """The predictions audit of every production model over the window ending
        now; how many ran. A model that cannot be audited is logged and skipped."""
        span = resolve_window(window)
        with self.uow() as tx:
            model_ids = tx.bias.production_model_ids()
        done = 0
        for model_id in model_ids:
            try:
                self.audit(str(model_id), PREDICTIONS, span)
            except AppError as exc:
                log.warning("bias audit of model %s skipped: %s", model_id, exc)
                continue
            done += 1
        return done

    def audit_training(
        self, model_id: uuid.UUID, feature_set_path: str | None, threshold: float
    ) -> TrainingAudit:
        """The test_set audit of a model being registered: computed from its stored
        test rows before the model row exists, so that its summary is registered
        with it (``model.details["bias_audit"]``, what the promotion gate reads);
        ``TrainingAudit.store`` writes the audit once the model is registered. Never
        raises: a failure is logged and summarised as status ERROR with the reason."""
        model = MonitoredModel(
            model_id, "", "", (), threshold, {}, None, feature_set_path
        )
        try:
            result = self._compute(model, TEST_SET, None, uuid.uuid4())
        except Exception as exc:
            log.exception("bias audit of trained model %s failed", model_id)
            reason = f"{type(exc).__name__}: {exc}"
            return TrainingAudit(error_summary(reason, iso(utcnow())), None, self)
        return TrainingAudit(summary(result), result, self)

    def store_training(self, result: dict[str, Any]) -> None:
        """Store a training audit's result once its model is registered (logged, not
        raised, when it cannot be)."""
        try:
            model = monitored_model(self.uow, result["model_id"])
            self._store(model, {**result, **_names(model)}, None)
        except Exception:
            log.exception("bias audit %s not stored", result["audit_id"])

    # -- the audit -------------------------------------------------------------------

    def audit(
        self,
        model_id: str,
        source: str,
        window: Window | None = None,
        job_id: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        """Audit one model and store everything found; the result JSON (with the
        alert id, when one was recorded). A job's audit takes the job's id."""
        audit_id = job_id or uuid.uuid4()
        model = monitored_model(self.uow, model_id)
        with self.uow() as tx:
            stored = tx.bias.get_audit(audit_id)
            stored_path = None if stored is None else stored.result_path
        if stored_path is not None:
            found: dict[str, Any] = json.loads(self.blobs.get_bytes(stored_path))
            return found
        return self._store(
            model, self._compute(model, source, window, audit_id), job_id
        )

    def _compute(
        self,
        model: MonitoredModel,
        source: str,
        window: Window | None,
        audit_id: uuid.UUID,
    ) -> dict[str, Any]:
        """The audit's result JSON; nothing stored."""
        specs = self.attributes.active()
        data = (
            read_test_set(self.blobs, model, specs)
            if source == TEST_SET
            else read_predictions(self.uow, model, specs, window)
        )
        attributes = self._attributes(specs, data)
        status = overall_status(attributes, data.rows)
        return {
            "audit_id": str(audit_id),
            "model_id": str(model.id),
            **_names(model),
            "source": source,
            "window": None if window is None else window.label,
            "window_start": None if window is None else iso(window.start),
            "window_end": None if window is None else iso(window.end),
            "threshold": model.threshold,
            "min_group_count": self.min_group_count,
            "computed_at": iso(utcnow()),
            "status": status,
            "rows": data.rows,
            "attributes": attributes,
        }

    def _store(
        self, model: MonitoredModel, result: dict[str, Any], job_id: uuid.UUID | None
    ) -> dict[str, Any]:
        """The result JSON and report in blob storage; the audit row, its metrics
        rows and any alert in one transaction. The result, with the alert's id."""
        audit_id = uuid.UUID(result["audit_id"])
        source, status, rows = result["source"], result["status"], result["rows"]
        window = (
            Window(
                result["window"],
                datetime.fromisoformat(result["window_start"]),
                datetime.fromisoformat(result["window_end"]),
            )
            if result.get("window_start")
            else None
        )
        self.blobs.put_bytes(result_path(audit_id), json.dumps(result).encode())
        self.blobs.put_bytes(report_path(audit_id), render_report(result).encode())
        row = BiasAudit(
            id=audit_id,
            model_id=model.id,
            job_id=job_id,
            source=source,
            window=None if window is None else window.label,
            window_start=None if window is None else window.start,
            window_end=None if window is None else window.end,
            status=status,
            row_count=rows,
            computed_at=datetime.fromisoformat(result["computed_at"]),
            result_path=result_path(audit_id),
            report_path=report_path(audit_id),
        )
        with self.uow(write=True) as tx:
            previous = tx.bias.latest_audit(model.id, source, with_data=True)
            tx.bias.add_audit(row, metric_rows(row, result))
            # live traffic alerts; a test set's audit gates promotion instead
            alert = (
                status_alert(row, model.name, model.version, previous, result)
                if source == PREDICTIONS
                else None
            )
            if alert is not None:
                tx.alerts.add(alert)
        log.info(
            "bias audit %s of model %s (%s): %s", audit_id, model.id, source, status
        )
        return {**result, "alert_id": None if alert is None else str(alert.id)}

    def _attributes(
        self, specs: list[AttributeSpec], data: AuditData
    ) -> list[dict[str, Any]]:
        from ml.fairness import AuditOptions, audit_attribute

        options = AuditOptions(
            min_count=self.min_group_count, replicates=self.replicates
        )
        return [
            attribute_result(
                audit_attribute(
                    spec.attribute_name,
                    spec.column_name,
                    data.columns.get(spec.column_name),
                    spec.groups,
                    data.labels,
                    data.decisions,
                    spec.thresholds,
                    options,
                )
            )
            for spec in specs
        ]

    # -- reading ---------------------------------------------------------------------

    def latest(self, query: BiasMetricsQuery) -> BiasMetricsView:
        """The latest stored audit of the model (of that source), the spec's shape."""
        from shared.services.bias_records import attribute_views

        model = monitored_model(self.uow, query.model_id)
        with self.uow() as tx:
            audit = tx.bias.latest_audit(model.id, query.source)
            path = None if audit is None else audit.result_path
        if audit is None or path is None:
            of = f" from {query.source}" if query.source else ""
            raise NotFound(
                f"No bias audit{of} of model {model.id} yet: POST /bias/audit "
                "starts one."
            )
        result = json.loads(self.blobs.get_bytes(path))
        return BiasMetricsView(
            model_id=str(audit.model_id),
            protected_attributes=attribute_views(result),
            computed_at=iso(audit.computed_at),
            audit_id=str(audit.id),
            source=audit.source,
            report_url=report_url(audit.id),
        )

    def report(self, audit_id: str) -> str:
        """The audit's HTML report."""
        key = parse_uuid(audit_id, "Bias report")
        with self.uow() as tx:
            audit = tx.bias.get_audit(key)
            path = None if audit is None else audit.report_path
        if path is None:
            raise NotFound(f"Bias report {audit_id} not found.")
        return self.blobs.get_bytes(path).decode()


# what ``ModelHandOff`` calls before registering a model: (model id, its feature
# set's path, its threshold) -> the audit to register with it
BiasAuditHook = Callable[[uuid.UUID, str | None, float], "TrainingAudit"]


@dataclass(frozen=True)
class TrainingAudit:
    """A training-time audit computed before its model is registered: the summary
    to register with the model, and ``store`` to call once it is."""

    summary: dict[str, Any]
    result: dict[str, Any] | None  # None: the audit failed (summary status ERROR)
    audits: BiasAudits

    def store(self) -> None:
        if self.result is not None:
            self.audits.store_training(self.result)


def _names(model: MonitoredModel) -> dict[str, str]:
    return {"model_name": model.name, "model_version": model.version}


__all__ = [
    "JOB_KIND",
    "ORCHESTRATOR",
    "AuditAccepted",
    "BiasAuditCommand",
    "BiasAudits",
    "BiasMetricsQuery",
    "BiasMetricsView",
]
