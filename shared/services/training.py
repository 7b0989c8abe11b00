"""Training jobs: validate a request and start the job, report it in the spec's training
shape, cancel it; the activity itself is shared/services/training_run.py.

A training job is a job like any other (PENDING, RUNNING, then COMPLETED, FAILED or
CANCELLED) with its detail in ``training_jobs``. The training API reports a job that has
not started as QUEUED, as the spec says.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from shared.db.models import TrainingJob
from shared.services.jobs import (
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    JobService,
)
from shared.services.pagination import Page
from shared.services.registry import ModelRegistry
from shared.services.training_command import StartTraining, TrainingAccepted
from shared.services.training_request import training_config
from shared.services.training_run import KIND, TrainingRun
from shared.timefmt import elapsed_and_eta, iso

if TYPE_CHECKING:
    from ml.training.algorithms import AlgorithmSpec
    from shared.ports import BlobStore, Transactions
    from shared.services.bias_audits import BiasAuditHook
    from shared.services.drift_baselines import DriftBaselines
    from shared.services.model_evaluation import ModelEvaluations

__all__ = [
    "CANCELLED",
    "CANCELLING",
    "COMPLETED",
    "FAILED",
    "FINISHED",
    "ORCHESTRATOR",
    "QUEUED",
    "RUNNING",
    "TrainingService",
    "training_job_to_dict",
]

ORCHESTRATOR = "training_orchestrator"
QUEUED = "QUEUED"  # the training API's name for PENDING


def _api_status(status: str) -> str:
    return QUEUED if status == PENDING else status


def training_job_to_dict(job: TrainingJob) -> dict[str, Any]:
    """The spec's training job progress response."""
    metrics = dict(job.metrics or {})
    live = metrics.pop("live", {})
    started, done = job.started_at, job.completed_at
    _, eta = elapsed_and_eta(started, done, job.progress, job.status == RUNNING)
    return {
        "job_id": str(job.id),
        "name": job.name,
        "algorithm": job.algorithm,
        "feature_set_id": str(job.feature_set_id) if job.feature_set_id else None,
        "status": _api_status(job.status),
        "progress": round(job.progress, 4),
        "current_epoch": live.get("iteration"),
        "total_epochs": live.get("total_iterations"),
        "metrics": {
            "train_loss": live.get("train_loss"),
            "val_loss": live.get("val_loss"),
            "val_auc": live.get("val_auc"),
            **metrics,
        },
        "hyperparameters": job.hyperparameters,
        "config": job.config,
        "model_id": str(job.model_id) if job.model_id else None,
        "error_message": job.error_message,
        "created_at": iso(job.created_at),
        "started_at": iso(started),
        "completed_at": iso(done),
        "eta_seconds": eta,
    }


class TrainingService:
    """Starting, following and running training jobs."""

    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        jobs: JobService,
        registry: ModelRegistry,
        evaluations: ModelEvaluations,
        baselines: DriftBaselines,
        bias_audit: BiasAuditHook | None = None,
    ) -> None:
        self.uow = uow
        self.jobs = jobs
        self.registry = registry
        self.runner = TrainingRun(
            uow, blobs, jobs, registry, evaluations, baselines, bias_audit
        )

    @staticmethod
    def algorithms() -> list[AlgorithmSpec]:
        """The algorithms and their hyperparameters (GET /training/algorithms)."""
        # ml.training loads scikit-learn: imported on first use, not with the API
        from ml.training.algorithms import ALGORITHMS

        return list(ALGORITHMS.values())

    def start(self, cmd: StartTraining) -> TrainingAccepted:
        """Validate, record the job PENDING, hand it to the launcher; the 202 body."""
        accepted = self.record(cmd)
        payload = {"job_id": accepted.job_id}
        self.jobs.launcher.launch(ORCHESTRATOR, accepted.job_id, payload)
        return accepted

    def record(
        self, cmd: StartTraining, job_id: uuid.UUID | None = None
    ) -> TrainingAccepted:
        """Validate and record the job PENDING without launching it: for a workflow
        that runs the job's activity (``run``) as one of its own steps."""
        fs, params, config = training_config(self.uow, cmd)
        job_id = job_id or uuid.uuid4()
        payload = {"job_id": str(job_id)}
        detail = TrainingJob(
            name=cmd.name,
            feature_set_id=fs.id,
            algorithm=cmd.algorithm,
            hyperparameters=params,
            config=config,
        )
        self.jobs.create(KIND, payload, job_id, row=detail)
        rows = fs.row_count or 0
        fits = 1 if params is not None else 4
        return TrainingAccepted(
            job_id=str(job_id),
            status=QUEUED,
            estimated_time_seconds=round(
                5 + fits * rows * (fs.feature_count or 50) * 2e-7
            ),
        )

    def get_row(self, job_id: str | uuid.UUID) -> TrainingJob:
        return self.runner.row(job_id)

    def get(self, job_id: str | uuid.UUID) -> dict[str, Any]:
        return training_job_to_dict(self.get_row(job_id))

    def list_jobs(
        self, page: int, page_size: int, status: str | None = None
    ) -> Page[dict[str, Any]]:
        wanted = PENDING if (status or "").upper() == QUEUED else status
        return self.jobs.list_jobs(
            page, page_size, KIND, wanted, view=training_job_to_dict
        )

    def cancel(self, job_id: str) -> dict[str, Any]:
        self.jobs.cancel(job_id, KIND)
        return self.get(job_id)

    def run(self, job_id: str) -> dict[str, Any]:
        """The activity: train, evaluate, register (idempotent)."""
        return self.runner.run(job_id)

    def fail(self, job_id: str, reason: str) -> None:
        """The one fail path of every job (kept here for callers that hold this service)."""
        self.jobs.fail(job_id, reason)
