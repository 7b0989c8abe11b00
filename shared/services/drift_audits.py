"""Drift audits: a model's logged predictions of a window against its training baseline.

An audit reads the window's features, scores and labels from the feature log, computes
data drift (PSI, KS, chi-square per feature) and concept drift (realised metrics on the
labelled rows against the training metrics, and the CBPE estimate on every score), then
stores the result JSON and HTML report in blob storage and, in one transaction, the audit
row with its drift_metrics rows (DATA: the overall PSI; FEATURE: each feature's
statistics; CONCEPT: the current, estimated and degradation figures) with the alerts
the alert rules make of its signals (drift_status, feature_drift, concept_drift,
estimated_performance; see shared.services.alert_rules), published once committed.
No predictions: status NO_DATA, no signal.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.db.models import DriftAudit
from shared.db.types import utcnow
from shared.errors import AppError, NotFound
from shared.services.drift_baselines import (
    DriftBaselines,
    MonitoredModel,
    monitored_model,
)
from shared.services.drift_records import RANK, drift_signals, metric_rows
from shared.services.drift_views import drift_view, feature_views, parse_uuid
from shared.services.monitoring_commands import AuditCommand, DriftQuery
from shared.services.monitoring_window import Window, resolve_window
from shared.timefmt import iso

if TYPE_CHECKING:
    from ml.monitoring import ConceptDrift, DataDrift
    from shared.ports import FeatureLogReader, JobLauncher, Transactions
    from shared.services.alert_rules import AlertEngine
    from shared.services.jobs import JobService

log = logging.getLogger(__name__)

JOB_KIND = "drift_audit"
ORCHESTRATOR = "drift_orchestrator"
HISTORY_AUDITS = (
    200  # drift history points per feature in GET /monitoring/drift/features
)


def result_path(audit_id: uuid.UUID) -> str:
    return f"monitoring/drift/{audit_id}/result.json"


def report_path(audit_id: uuid.UUID) -> str:
    return f"monitoring/drift/{audit_id}/report.html"


@dataclass(frozen=True)
class AuditAccepted:
    job_id: str
    status: str
    estimated_time_seconds: float


@dataclass(frozen=True)
class AuditDone:
    audit_id: str
    model_id: str
    window: str
    status: str
    rows: int
    alert_id: str | None
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DriftResult:
    """GET /monitoring/drift: the spec's shape, plus where the audit came from."""

    model_id: str
    window: str
    window_start: str | None
    window_end: str | None
    status: str
    row_count: int
    data_drift: dict[str, Any]
    concept_drift: dict[str, Any] | None
    computed_at: str | None
    audit_id: str
    report_url: str


@dataclass(frozen=True)
class FeatureDetails:
    """GET /monitoring/drift/features: per feature histograms, quantiles, history."""

    model_id: str
    window: str
    audit_id: str
    computed_at: str | None
    features: list[dict[str, Any]]


def _overall(data: DataDrift, concept: ConceptDrift) -> str:
    known = [s for s in (data.status, concept.status) if s != "NO_DATA"]
    return max(known, key=RANK.__getitem__) if known else "NO_DATA"


class DriftAudits:
    def __init__(
        self,
        uow: Transactions,
        baselines: DriftBaselines,
        reader: FeatureLogReader,
        jobs: JobService,
        launcher: JobLauncher,
        alerts: AlertEngine,
    ) -> None:
        self.uow = uow
        self.alerts = alerts
        self.baselines = baselines
        self.reader = reader
        self.blobs = baselines.blobs
        self.jobs = jobs
        self.launcher = launcher

    # -- requests --------------------------------------------------------------------

    def request(self, cmd: AuditCommand) -> AuditAccepted:
        """Validate, record the job and hand it to the launcher (the 202 body)."""
        window = resolve_window(cmd.window, cmd.window_start, cmd.window_end)
        model = monitored_model(self.uow, cmd.model_id)
        self.baselines.available(model)
        job_id = uuid.uuid4()
        payload = {
            "job_id": str(job_id),
            "model_id": str(model.id),
            "window": window.label,
            "window_start": iso(window.start),
            "window_end": iso(window.end),
        }
        self.jobs.create(JOB_KIND, payload, job_id)
        self.launcher.launch(ORCHESTRATOR, str(job_id), {"job_id": str(job_id)})
        return AuditAccepted(str(job_id), "PENDING", 5.0)

    def job(self, job_id: str) -> dict[str, Any]:
        """A drift audit job's status (404 for a job of another kind)."""
        return self.jobs.get(job_id, JOB_KIND)

    def run_job(self, job_id: str) -> dict[str, Any]:
        """The activity body; a re-run finds the audit it stored (the job id is its id)."""
        from shared.services.jobs import JobCancelled

        try:
            payload = self.jobs.start(job_id, "reading the window")
        except JobCancelled:
            return {"status": "CANCELLED"}
        window = Window(
            payload["window"],
            datetime.fromisoformat(payload["window_start"]),
            datetime.fromisoformat(payload["window_end"]),
        )
        try:
            done = self._audit(payload["model_id"], window, uuid.UUID(job_id))
        except AppError as exc:
            self.jobs.fail(job_id, exc.message)
            return {"status": "FAILED", "error": exc.message}
        result = {
            "audit_id": done.audit_id,
            "model_id": done.model_id,
            "window": done.window,
            "drift_status": done.status,
            "rows": done.rows,
            "alert_id": done.alert_id,
            "seconds": done.seconds,
        }
        self.jobs.complete(job_id, result)
        return {"status": "COMPLETED", **result}

    def run_scheduled(self, window: str) -> int:
        """Audit every production model over the window ending now; how many ran. A
        model that cannot be audited (no baseline) is logged and skipped."""
        span = resolve_window(window)
        with self.uow() as tx:
            model_ids = tx.drift.production_model_ids()
        done = 0
        for model_id in model_ids:
            try:
                self._audit(str(model_id), span)
            except AppError as exc:
                log.warning("drift audit of model %s skipped: %s", model_id, exc)
                continue
            done += 1
        return done

    # -- the audit -------------------------------------------------------------------

    def _audit(
        self, model_id: str, window: Window, job_id: uuid.UUID | None = None
    ) -> AuditDone:
        """Audit one model over one window and store everything it found; a job's
        audit takes the job's id."""
        import numpy as np

        from ml.monitoring import compute_drift, concept_drift

        audit_id = job_id or uuid.uuid4()
        model = monitored_model(self.uow, model_id)
        with self.uow() as tx:
            stored = tx.drift.get_audit(audit_id)
            if stored is not None:
                return AuditDone(
                    str(audit_id),
                    str(model.id),
                    stored.window,
                    stored.status,
                    stored.row_count,
                    None,
                )
        clock = time.perf_counter()
        baseline = self.baselines.ensure(model)
        logged = self.reader.window(model.id, window.start, window.end, baseline.names)
        features = logged.features
        if logged.rows == 0:
            features = np.empty((0, len(baseline.names)), np.float32)
        read = time.perf_counter()
        data = compute_drift(baseline, features)
        concept = concept_drift(
            model.training_metrics(),
            logged.scores,
            model.probabilities(logged.scores),
            logged.labels,
            model.threshold,
        )
        status = _overall(data, concept)
        stats = time.perf_counter()
        computed_at = utcnow()
        result = self._result(audit_id, model, window, computed_at, data, concept)
        self.blobs.put_bytes(result_path(audit_id), json.dumps(result).encode())
        report = time.perf_counter()
        self.blobs.put_bytes(report_path(audit_id), self._report(result, data, concept))
        rendered = time.perf_counter()
        row = DriftAudit(
            id=audit_id,
            model_id=model.id,
            job_id=job_id,
            window=window.label,
            window_start=window.start,
            window_end=window.end,
            status=status,
            row_count=logged.rows,
            computed_at=computed_at,
            result_path=result_path(audit_id),
            report_path=report_path(audit_id),
        )
        with self.uow(write=True) as tx:
            previous = tx.drift.latest_audit(model.id, window.label, with_data=True)
            tx.drift.add_audit(row, metric_rows(row, data, concept))
            signals = drift_signals(row, model, previous, data, concept)
            created = self.alerts.record(tx, signals)
        if created:
            self.alerts.publish_pending()
        stored_at = time.perf_counter()
        seconds = {
            "read": read - clock,
            "statistics": stats - read,
            "store": (report - stats) + (stored_at - rendered),
            "report": rendered - report,
        }
        log.info("drift audit %s of model %s: %s", audit_id, model.id, status)
        return AuditDone(
            str(audit_id),
            str(model.id),
            window.label,
            status,
            logged.rows,
            str(created[0].id) if created else None,
            {k: round(v, 4) for k, v in seconds.items()},
        )

    @staticmethod
    def _result(
        audit_id: uuid.UUID,
        model: MonitoredModel,
        window: Window,
        computed_at: datetime,
        data: DataDrift,
        concept: ConceptDrift,
    ) -> dict[str, Any]:
        return {
            "audit_id": str(audit_id),
            "model_id": str(model.id),
            "model_name": model.name,
            "model_version": model.version,
            "window": window.label,
            "window_start": iso(window.start),
            "window_end": iso(window.end),
            "computed_at": iso(computed_at),
            "status": _overall(data, concept),
            "rows": data.rows,
            "data_drift": data.to_dict(),
            "concept_drift": concept.to_dict(),
        }

    @staticmethod
    def _report(
        result: dict[str, Any], data: DataDrift, concept: ConceptDrift
    ) -> bytes:
        from ml.monitoring.report import render_report

        details = {
            "Model": f"{result['model_name']} {result['model_version']}",
            "Model id": result["model_id"],
            "Window": f"{result['window']}: {result['window_start']} to "
            f"{result['window_end']}",
            "Computed at": str(result["computed_at"]),
            "Status": str(result["status"]),
        }
        title = f"Drift report: {result['model_name']} {result['model_version']}"
        return render_report(data, concept, title=title, details=details).encode()

    # -- reading ---------------------------------------------------------------------

    def _latest(self, query: DriftQuery) -> tuple[DriftAudit, dict[str, Any]]:
        model = monitored_model(self.uow, query.model_id)
        with self.uow() as tx:
            audit = tx.drift.latest_audit(model.id, query.window)
        if audit is None:
            raise NotFound(
                f"No drift audit of model {model.id} over window {query.window} yet: "
                "POST /monitoring/drift/compute starts one."
            )
        return audit, json.loads(self.blobs.get_bytes(audit.result_path))

    def latest(self, query: DriftQuery) -> DriftResult:
        """The latest stored audit of the model and window, in the spec's shape."""
        audit, result = self._latest(query)
        data, concept = drift_view(result)
        return DriftResult(
            model_id=str(audit.model_id),
            window=audit.window,
            window_start=iso(audit.window_start),
            window_end=iso(audit.window_end),
            status=audit.status,
            row_count=audit.row_count,
            data_drift=data,
            concept_drift=concept,
            computed_at=iso(audit.computed_at),
            audit_id=str(audit.id),
            report_url=f"/api/v1/monitoring/drift/reports/{audit.id}",
        )

    def features(self, query: DriftQuery) -> FeatureDetails:
        """Per feature (or the one named: 404 when the model has none such) the baseline
        and current histograms on the same bins, quantiles, missing rates and history."""
        audit, result = self._latest(query)
        names = [f["name"] for f in result["data_drift"]["features"]]
        if query.feature is not None and query.feature not in names:
            raise NotFound(f"Model {audit.model_id} has no feature {query.feature!r}.")
        with self.uow() as tx:
            history = tx.drift.history(
                audit.model_id, query.window, query.feature, HISTORY_AUDITS
            )
        return FeatureDetails(
            model_id=str(audit.model_id),
            window=audit.window,
            audit_id=str(audit.id),
            computed_at=iso(audit.computed_at),
            features=feature_views(result, query.feature, history),
        )

    def report(self, audit_id: str) -> str:
        """The audit's HTML report."""
        key = parse_uuid(audit_id, "Drift report")
        with self.uow() as tx:
            audit = tx.drift.get_audit(key)
            path = None if audit is None else audit.report_path
        if path is None:
            raise NotFound(f"Drift report {audit_id} not found.")
        return self.blobs.get_bytes(path).decode()


__all__ = [
    "JOB_KIND",
    "ORCHESTRATOR",
    "AuditAccepted",
    "AuditCommand",
    "AuditDone",
    "DriftAudits",
    "DriftQuery",
    "DriftResult",
    "FeatureDetails",
]
