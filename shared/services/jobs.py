"""Jobs: the database row that every runtime reports progress through.

One state machine for every kind of long work: PENDING, RUNNING, then COMPLETED, FAILED
or CANCELLED (CANCELLING while a running job winds down). An API call writes the row,
hands the job to a launcher and answers 202. Activities move the row along and finish
it. Cancellation is a flag on the row, so an activity sees it the same way under the
Durable host on Azure and under the local engine.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.db.models import Job
from shared.db.types import utcnow
from shared.errors import Conflict, NotFound
from shared.services.pagination import Page, check_page
from shared.timefmt import elapsed_and_eta, iso

if TYPE_CHECKING:
    from shared.ports import JobLauncher, Transactions

log = logging.getLogger(__name__)

PENDING, RUNNING, COMPLETED, FAILED = "PENDING", "RUNNING", "COMPLETED", "FAILED"
CANCELLING, CANCELLED = "CANCELLING", "CANCELLED"
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
STOPPING = frozenset({CANCELLING, CANCELLED})


class JobCancelled(Exception):
    """Raised inside an activity when the job was cancelled; stops the work early."""


def job_to_dict(job: Job) -> dict[str, Any]:
    """The generic view of a job of any kind (GET /jobs/{id})."""
    started, done = job.started_at, job.completed_at
    elapsed, eta = elapsed_and_eta(started, done, job.progress, job.status == RUNNING)
    return {
        "job_id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 4),
        "message": job.message,
        "input": job.input,
        "result": job.result,
        "error_message": job.error_message,
        "created_at": iso(job.created_at),
        "started_at": iso(started),
        "completed_at": iso(done),
        "elapsed_seconds": elapsed,
        "eta_seconds": eta,
    }


def mark_completed(job: Job, result: dict[str, Any]) -> None:
    """RUNNING to COMPLETED, in the caller's session (with the work's own writes)."""
    job.status, job.progress, job.message = COMPLETED, 1.0, "done"
    job.result, job.completed_at = result, utcnow()


def job_uuid(job_id: str | uuid.UUID, what: str = "Job") -> uuid.UUID:
    try:
        return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"{what} {job_id!r} not found.") from None


class JobService:
    """Takes the units of work and (read when used: a runtime attaches it after start)
    the launcher."""

    def __init__(self, uow: Transactions, launcher: Callable[[], JobLauncher]) -> None:
        self.uow = uow
        self._launcher = launcher

    @property
    def launcher(self) -> JobLauncher:
        return self._launcher()

    def create(
        self,
        kind: str,
        payload: dict[str, Any],
        job_id: uuid.UUID | None = None,
        *,
        row: Job | None = None,
    ) -> Job:
        """Record a PENDING job; ``row`` is a kind's own subclass (e.g. TrainingJob)."""
        job = row if row is not None else Job()
        job.id = job_id or job.id or uuid.uuid4()
        job.kind, job.status, job.input, job.progress = kind, PENDING, payload, 0.0
        with self.uow(write=True) as tx:
            tx.jobs.add(job)
        return job

    def get_row(self, job_id: str | uuid.UUID, kind: str | None = None) -> Job:
        what = "Training job" if kind == "training" else "Job"
        key = job_uuid(job_id, what)
        with self.uow() as tx:
            job = tx.jobs.get_training(key) if kind == "training" else tx.jobs.get(key)
            if job is None or (kind is not None and job.kind != kind):
                raise NotFound(f"{what} {job_id} not found.")
            return job

    def get(self, job_id: str | uuid.UUID, kind: str | None = None) -> dict[str, Any]:
        return job_to_dict(self.get_row(job_id, kind))

    def list_jobs(
        self,
        page: int,
        page_size: int,
        kind: str | None = None,
        status: str | None = None,
        view: Callable[[Any], dict[str, Any]] = job_to_dict,
    ) -> Page[dict[str, Any]]:
        check_page(page, page_size)
        with self.uow() as tx:
            result = tx.jobs.page(
                page, page_size, kind or None, status.upper() if status else None
            )
            items = [view(j) for j in result.items]
        return Page(items, result.page, result.page_size, result.total)

    # -- called from activities -------------------------------------------------------

    def start(
        self, job_id: str | uuid.UUID, message: str | None = None
    ) -> dict[str, Any]:
        """Mark RUNNING (idempotent: a re-run activity starts again) and return the input.
        Raises JobCancelled when the job was cancelled before it began."""
        with self.uow(write=True) as tx:
            job = tx.jobs.get(job_uuid(job_id))
            if job is None:
                raise NotFound(f"Job {job_id} not found.")
            if job.status in STOPPING:
                job.status, job.completed_at = CANCELLED, job.completed_at or utcnow()
                raise_cancel = True
            else:
                raise_cancel = False
                job.status = RUNNING
                job.started_at = job.started_at or utcnow()
                job.message = message
                job.error_message = None
            payload = dict(job.input or {})
        if raise_cancel:
            raise JobCancelled(str(job_id))
        return payload

    def record(self, job_id: str | uuid.UUID, **values: Any) -> str:
        """Write fields of the job (or of its kind's detail) unless it was cancelled
        meanwhile, which ends it CANCELLED; returns the status."""
        with self.uow(write=True) as tx:
            job = tx.jobs.get(job_uuid(job_id))
            if job is None:
                raise NotFound(f"Job {job_id} not found.")
            if job.status in STOPPING:
                job.status, job.completed_at = CANCELLED, job.completed_at or utcnow()
                return CANCELLED
            for key, value in values.items():
                setattr(job, key, value)
            return job.status

    def progress(self, job_id: str | uuid.UUID, fraction: float, message: str) -> None:
        """Record progress; raises JobCancelled if a cancel was asked for meanwhile."""
        status = self.record(
            job_id, progress=max(0.0, min(1.0, fraction)), message=message
        )
        if status == CANCELLED:
            raise JobCancelled(str(job_id))
        log.info(
            "job %s: %.0f%% %s",
            job_id,
            fraction * 100,
            message,
            extra={"job_id": str(job_id)},
        )

    def is_stopping(self, job_id: str | uuid.UUID) -> bool:
        """A cancel was asked for (or has ended the job)."""
        with self.uow() as tx:
            status = tx.jobs.status(job_uuid(job_id))
        return status in STOPPING

    def complete(self, job_id: str | uuid.UUID, result: dict[str, Any]) -> None:
        with self.uow(write=True) as tx:
            job = tx.jobs.get(job_uuid(job_id))
            if job is not None:
                mark_completed(job, result)

    def fail(self, job_id: str | uuid.UUID, reason: str) -> None:
        """End the job FAILED with a reason, unless it already finished; a cancel in
        flight ends it CANCELLED. The one fail path of every kind of job."""
        with self.uow(write=True) as tx:
            job = tx.jobs.get(job_uuid(job_id))
            if job is None or job.status in FINISHED:
                return
            if job.status == CANCELLING:
                job.status = CANCELLED
            else:
                job.status, job.error_message = FAILED, reason[:4000]
            job.completed_at = utcnow()
            kind = job.kind
        log.warning(
            "job %s failed: %s",
            job_id,
            reason,
            extra={"job_id": str(job_id), "kind": kind, "reason": reason},
        )

    def request_cancel(
        self, job_id: str | uuid.UUID, kind: str | None = None
    ) -> dict[str, Any]:
        self.cancel(job_id, kind)
        return self.get(job_id)

    def cancel(self, job_id: str | uuid.UUID, kind: str | None = None) -> None:
        """A PENDING job ends CANCELLED at once; a RUNNING one is CANCELLING until its
        activity sees the flag."""
        what = "Training job" if kind == "training" else "Job"
        with self.uow(write=True) as tx:
            job = tx.jobs.get(job_uuid(job_id, what))
            if job is None or (kind is not None and job.kind != kind):
                raise NotFound(f"{what} {job_id} not found.")
            if job.status in FINISHED:
                raise Conflict(f"{what} {job_id} has already finished ({job.status}).")
            job.status = CANCELLED if job.status == PENDING else CANCELLING
            if job.status == CANCELLED:
                job.completed_at = utcnow()
        self.launcher.cancel(str(job_id), "cancelled by the user")
