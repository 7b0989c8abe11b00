"""Retraining: a challenger for a registered model (the champion), trained on new data
with the champion's feature configuration, algorithm and hyperparameters, compared with
it on the same recent holdout and promoted when asked and every gate passes.

A retraining job is a job of kind ``retraining``: its input holds the request and the
ids its steps will create (so a re-run step finds what an earlier run made), its result
the steps' outcomes. The steps are shared/services/retraining_steps.py, run by the
Durable orchestration in orchestrations/retraining.py. One retraining per model at a
time: a second trigger while one is open is refused (409) with the open job's id.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import Job
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.jobs import COMPLETED, FINISHED, PENDING, job_uuid
from shared.services.pagination import Page
from shared.services.registry import get_model
from shared.services.retraining_commands import (
    STEPS,
    STRATEGIES,
    DataStrategy,
    PromoteChallenger,
    RetrainingAccepted,
    RetrainingQuery,
    SampleWeights,
    TriggerRetraining,
)
from shared.services.retraining_gates import decided_by
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.db.models import DatasetVersion, FeatureSet, MLModel
    from shared.ports import Transactions, UnitOfWork
    from shared.services.datasets import DatasetService
    from shared.services.jobs import JobService
    from shared.services.registry import ModelRegistry
    from shared.services.retraining_steps import RetrainingWorkflow

log = logging.getLogger(__name__)

KIND = "retraining"
ORCHESTRATOR = "retraining_orchestrator"
WEIGHT_TOLERANCE = 1e-6
_SECONDS_PER_ROW = 60e-6  # features, training and two scorings, rounded up


class RetrainingRunning(Conflict):
    """A retraining of the model is open; ``job_id`` names it."""

    def __init__(self, model_id: str, job_id: str) -> None:
        super().__init__(
            f"Model {model_id} is being retrained by job {job_id}; wait for it to "
            "finish (GET /retraining/jobs/{id}) or cancel it (POST /jobs/{id}/cancel).",
            [{"field": "model_id", "message": f"retraining job {job_id} is open"}],
            code="RETRAINING_RUNNING",
        )
        self.job_id = job_id


def _strategy_view(payload: dict[str, Any]) -> dict[str, Any]:
    strategy = dict(payload.get("data_strategy") or {})
    for source in ("new", "historical"):
        if strategy.get(source):
            strategy[source] = {
                k: v for k, v in strategy[source].items() if k != "storage_path"
            }
    return strategy


def retraining_view(job: Job) -> dict[str, Any]:
    """A retraining job as GET /retraining/jobs/{id} reports it."""
    payload = dict(job.input or {})
    result = dict(job.result or {})
    done = result.get("steps") or {}
    return {
        "job_id": str(job.id),
        "status": job.status,
        "stage": result.get("stage") or ("queued" if job.status == PENDING else None),
        "progress": round(job.progress, 4),
        "message": job.message,
        "model_id": payload.get("model_id"),
        "model_name": payload.get("model_name"),
        "reason": payload.get("reason"),
        "trigger": payload.get("trigger"),
        "alert_id": payload.get("alert_id"),
        "auto_promote": bool(payload.get("auto_promote")),
        "data_strategy": _strategy_view(payload),
        "steps": {step: done[step] for step in STEPS if step in done},
        "challenger_model_id": result.get("challenger_model_id"),
        "champion": result.get("champion"),
        "challenger": result.get("challenger"),
        "holdout": result.get("holdout"),
        "gates": result.get("gates"),
        "decided_by": result.get("decided_by"),
        "promoted": bool(result.get("promoted")),
        "promotion": result.get("promotion"),
        "failed_step": result.get("failed_step"),
        "error_message": job.error_message,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
    }


class RetrainingService:
    def __init__(
        self,
        uow: Transactions,
        jobs: JobService,
        datasets: DatasetService,
        registry: ModelRegistry,
        workflow: RetrainingWorkflow,
    ) -> None:
        self.uow = uow
        self.jobs = jobs
        self.datasets = datasets
        self.registry = registry
        self.workflow = workflow

    # -- starting -------------------------------------------------------------------

    def trigger(self, cmd: TriggerRetraining) -> RetrainingAccepted:
        """Validate, record the job and hand it to the launcher (the 202 body)."""
        champion, fs = self._champion(cmd.model_id)
        strategy = self._strategy(cmd.data_strategy, fs)
        job_id = uuid.uuid4()
        payload = {
            "job_id": str(job_id),
            "model_id": str(champion.id),
            "model_name": champion.name,
            "model_version": champion.version,
            "reason": cmd.reason,
            "actor": cmd.actor,
            "trigger": cmd.trigger,
            "alert_id": cmd.alert_id,
            "auto_promote": cmd.auto_promote,
            "data_strategy": strategy,
            "features_job_id": str(uuid.uuid4()),
            "training_job_id": str(uuid.uuid4()),
        }
        with self.uow(write=True) as tx:
            # the lock makes a concurrent trigger of the same model wait, then see ours
            tx.models.get_for_update(champion.id)
            running = _open_job_of(tx, champion.id)
            if running is not None:
                raise RetrainingRunning(str(champion.id), running)
            tx.jobs.add(
                Job(id=job_id, kind=KIND, status=PENDING, input=payload, progress=0.0)
            )
        self.jobs.launcher.launch(ORCHESTRATOR, str(job_id), {"job_id": str(job_id)})
        rows = sum(
            (strategy[s] or {}).get("row_count") or 0 for s in ("new", "historical")
        )
        log.info("retraining job %s of model %s: %s", job_id, champion.id, cmd.reason)
        return RetrainingAccepted(
            job_id=str(job_id),
            status=PENDING,
            model_id=str(champion.id),
            estimated_time_seconds=round(10 + rows * _SECONDS_PER_ROW),
        )

    def trigger_from_alert(self, alert: dict[str, Any], action: dict[str, Any]) -> str:
        """An alert rule's ``retrain`` action; the job id. A retraining of the model
        already open answers its id, so a redelivered alert starts nothing new."""
        raw = dict(action.get("data_strategy") or {"type": "replace"})
        weights = raw.pop("sample_weights", None)
        try:
            strategy = DataStrategy(
                **raw,
                sample_weights=SampleWeights(**weights) if weights else None,
            )
        except TypeError as exc:
            raise ValidationFailed(
                f"The alert's retrain action has an invalid data_strategy: {exc}",
                field_error("action.data_strategy", str(exc)),
            ) from None
        title = alert.get("title") or alert.get("alert_type") or "alert"
        cmd = TriggerRetraining(
            model_id=str(alert["model_id"]),
            reason=f"alert {alert.get('id')}: {title}",
            data_strategy=strategy,
            auto_promote=bool(action.get("auto_promote", False)),
            actor="alert-rule",
            trigger="alert",
            alert_id=None if alert.get("id") is None else str(alert["id"]),
        )
        try:
            return self.trigger(cmd).job_id
        except RetrainingRunning as running:
            return running.job_id

    # -- reading --------------------------------------------------------------------

    def list_jobs(self, query: RetrainingQuery) -> Page[dict[str, Any]]:
        return self.jobs.list_jobs(
            query.page, query.page_size, KIND, query.status, view=retraining_view
        )

    def get(self, job_id: str) -> dict[str, Any]:
        return retraining_view(self._job(job_id))

    # -- promoting later ------------------------------------------------------------

    def promote(self, cmd: PromoteChallenger) -> dict[str, Any]:
        """Promote a finished job's challenger through the same gates (checked again
        now: a bias audit or a baseline may have come since)."""
        job = self._job(cmd.job_id)
        if job.status != COMPLETED:
            raise Conflict(
                f"Retraining job {cmd.job_id} is {job.status}: only a completed job's "
                "challenger can be promoted.",
                field_error("job_id", f"job is {job.status}"),
            )
        result = dict(job.result or {})
        challenger_id = str(result["challenger_model_id"])
        if result.get("promoted"):
            raise Conflict(
                f"Retraining job {cmd.job_id} promoted its challenger {challenger_id} "
                "already.",
                field_error("job_id", "already promoted"),
            )
        gates = self.workflow.gates(
            challenger_id,
            str(job.input["model_id"]),
            result["champion"]["metrics"],
            result["challenger"]["metrics"],
        )
        failed = next((g for g in gates if not g.passed), None)
        if failed is not None:
            raise Conflict(
                f"The challenger {challenger_id} failed the {failed.name} gate: "
                f"{failed.message}.",
                [{"field": f"gates.{failed.name}", "message": failed.message}],
                code="GATE_FAILED",
            )
        promotion = self.workflow.promote_challenger(
            challenger_id, f"retraining job {cmd.job_id}: {cmd.reason}", cmd.actor
        )
        result.update(
            gates=[g.to_dict() for g in gates],
            decided_by=decided_by(gates),
            promoted=True,
            promotion={**promotion, "reason": cmd.reason, "by": cmd.actor},
        )
        self.jobs.record(job.id, result=result)
        return self.get(cmd.job_id)

    # -- checks ---------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        key = job_uuid(job_id, "Retraining job")
        with self.uow() as tx:
            job = tx.jobs.get(key)
            if job is None or job.kind != KIND:
                raise NotFound(f"Retraining job {job_id} not found.")
            return job

    def _champion(self, model_id: str) -> tuple[MLModel, FeatureSet]:
        with self.uow() as tx:
            try:
                model = get_model(tx.models, model_id)
            except NotFound as exc:
                raise NotFound(
                    exc.message, field_error("model_id", "unknown model")
                ) from None
            fs = (
                tx.feature_sets.get(model.feature_set_id)
                if model.feature_set_id is not None
                else None
            )
        if fs is None or not fs.feature_config:
            raise Conflict(
                f"Model {model_id} has no feature set: its feature configuration, "
                "which a retraining reuses, is unknown.",
                field_error("model_id", "no feature configuration"),
            )
        return model, fs

    def _strategy(self, strategy: DataStrategy, fs: FeatureSet) -> dict[str, Any]:
        """The strategy as the job runs it, or 422/404 naming the field."""
        from ml.features.config import FeatureInputError, parse_duration

        kind = strategy.type
        if kind not in STRATEGIES:
            raise ValidationFailed(
                f"data_strategy.type must be one of {list(STRATEGIES)}.",
                field_error("data_strategy.type", f"one of {list(STRATEGIES)}"),
            )
        details: list[dict[str, Any]] = []

        def refuse(name: str, message: str) -> None:
            details.append({"field": f"data_strategy.{name}", "message": message})

        if kind == "merge":
            for name in ("new_dataset_id", "historical_dataset_id"):
                if not getattr(strategy, name):
                    refuse(name, "Required field: a merge needs both datasets")
        if kind == "replace" and strategy.historical_dataset_id:
            refuse("historical_dataset_id", "replace trains on the new data only")
        if kind == "sliding_window" and not strategy.window:
            refuse("window", "Required field: the length of the most recent window")
        if kind != "sliding_window" and strategy.window:
            refuse("window", "only a sliding_window has a window")
        window_ns = None
        if kind == "sliding_window" and strategy.window:
            try:
                window_ns = parse_duration(strategy.window, "window")
            except FeatureInputError as exc:
                refuse("window", exc.message)
        weights = strategy.sample_weights
        if weights is not None:
            _check_weights(weights, strategy, refuse)
        if details:
            raise ValidationFailed("The data strategy is not valid.", details)
        new_id = strategy.new_dataset_id or (
            str(fs.dataset_id) if fs.dataset_id else None
        )
        if new_id is None:
            raise ValidationFailed(
                "The champion's dataset is gone: name the new data.",
                field_error("data_strategy.new_dataset_id", "Required field"),
            )
        new = self._dataset(new_id, strategy.new_dataset_version, "new", fs)
        historical = None
        if strategy.historical_dataset_id:
            historical = self._dataset(
                strategy.historical_dataset_id,
                strategy.historical_dataset_version,
                "historical",
                fs,
            )
            if (historical["dataset_id"], historical["version"]) == (
                new["dataset_id"],
                new["version"],
            ):
                raise ValidationFailed(
                    "The historical data is the new data.",
                    field_error(
                        "data_strategy.historical_dataset_id", "same as the new data"
                    ),
                )
        return {
            "type": kind,
            "new": new,
            "historical": historical,
            "sample_weights": None
            if weights is None
            else {"new": weights.new, "historical": weights.historical},
            "window": strategy.window,
            "window_ns": window_ns,
        }

    def _dataset(
        self, dataset_id: str, version: str | None, source: str, fs: FeatureSet
    ) -> dict[str, Any]:
        field = f"data_strategy.{source}_dataset_id"
        try:
            record: DatasetVersion = self.datasets.version(dataset_id, version)
        except NotFound as exc:
            raise NotFound(exc.message, field_error(field, "unknown dataset")) from None
        columns = {c["name"] for c in (record.schema or {}).get("columns", [])}
        needed = _needed_columns(fs)
        missing = [c for c in needed if c not in columns]
        if missing:
            raise ValidationFailed(
                f"Dataset {dataset_id} lacks the columns the champion's features "
                f"need: {missing}.",
                field_error(field, f"missing columns {missing}"),
            )
        return {
            "dataset_id": str(record.dataset_id),
            "version": record.version,
            "storage_path": record.storage_path,
            "row_count": record.row_count,
        }


def _needed_columns(fs: FeatureSet) -> list[str]:
    """The source columns of the roles the champion's features read, and its label."""
    config = fs.feature_config or {}
    mapping = dict(config.get("column_mapping") or {})
    roles = list(config.get("available_roles") or ())
    label = config.get("label_column")
    needed = [mapping.get(role, role) for role in roles]
    if label:
        needed.append(mapping.get(label, label))
    return sorted(set(needed))


def _check_weights(weights: SampleWeights, strategy: DataStrategy, refuse: Any) -> None:
    if not strategy.historical_dataset_id:
        refuse(
            "sample_weights",
            "weights share the training between the new and the historical data: "
            "name historical_dataset_id too",
        )
        return
    shares = (weights.new, weights.historical)
    if not all(isinstance(w, int | float) and math.isfinite(w) for w in shares):
        refuse("sample_weights", "weights are numbers")
    elif any(w < 0 for w in shares):
        refuse("sample_weights", "weights are >= 0")
    elif abs(sum(shares) - 1.0) > WEIGHT_TOLERANCE:
        refuse("sample_weights", f"new + historical must sum to 1, not {sum(shares)}")


def _open_job_of(tx: UnitOfWork, model_id: uuid.UUID) -> str | None:
    for job in tx.jobs.unfinished():
        if job.kind == KIND and (job.input or {}).get("model_id") == str(model_id):
            if job.status not in FINISHED:
                return str(job.id)
    return None


__all__ = [
    "KIND",
    "ORCHESTRATOR",
    "RetrainingRunning",
    "RetrainingService",
    "retraining_view",
]
