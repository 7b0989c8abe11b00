"""Jobs: the database row that every runtime reports progress through.

An API call writes the row, hands the job to a launcher and answers 202. Activities move
the row along (RUNNING, progress, message) and finish it (COMPLETED with a result, or
FAILED with a reason). Cancellation is a flag on the row, so an activity sees it the same
way under the Durable host on Azure and under the local engine.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select, update

from shared.bootstrap import AppContext
from shared.db.models import Job
from shared.db.types import utcnow
from shared.errors import Conflict, NotFound
from shared.services.pagination import Page, paginate
from shared.timefmt import elapsed_and_eta, iso

log = logging.getLogger(__name__)

PENDING, RUNNING, COMPLETED, FAILED = "PENDING", "RUNNING", "COMPLETED", "FAILED"
CANCELLING, CANCELLED = "CANCELLING", "CANCELLED"
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})


class JobCancelled(Exception):
    """Raised inside an activity when the job was cancelled; stops the work early."""


def job_to_dict(job: Job) -> dict[str, Any]:
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


def _uuid(job_id: str | uuid.UUID) -> uuid.UUID:
    try:
        return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))
    except ValueError:
        raise NotFound(f"Job {job_id!r} not found.") from None


class JobService:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def create(
        self, kind: str, payload: dict[str, Any], job_id: uuid.UUID | None = None
    ) -> Job:
        with self.ctx.db.session(write=True) as s:
            job = Job(
                id=job_id or uuid.uuid4(), kind=kind, status=PENDING, input=payload
            )
            s.add(job)
        return job

    def get_row(self, job_id: str | uuid.UUID, kind: str | None = None) -> Job:
        with self.ctx.db.session() as s:
            job = s.get(Job, _uuid(job_id))
            if job is None or (kind is not None and job.kind != kind):
                raise NotFound(f"Job {job_id} not found.")
            return job

    def get(self, job_id: str | uuid.UUID, kind: str | None = None) -> dict[str, Any]:
        return job_to_dict(self.get_row(job_id, kind))

    def list_jobs(
        self,
        page: int,
        page_size: int,
        kind: str | None = None,
        status: str | None = None,
    ) -> Page[dict[str, Any]]:
        query = select(Job).order_by(Job.created_at.desc(), Job.id)
        if kind:
            query = query.where(Job.kind == kind)
        if status:
            query = query.where(Job.status == status.upper())
        with self.ctx.db.session() as s:
            result = paginate(s, query, page, page_size)
            items = [job_to_dict(j) for j in result.items]
        return Page(items, result.page, result.page_size, result.total)

    # -- called from activities -------------------------------------------------------

    def start(
        self, job_id: str | uuid.UUID, message: str | None = None
    ) -> dict[str, Any]:
        """Mark RUNNING (idempotent: a re-run activity starts again) and return the input.
        Raises JobCancelled when the job was cancelled before it began."""
        with self.ctx.db.session(write=True) as s:
            job = s.get(Job, _uuid(job_id))
            if job is None:
                raise NotFound(f"Job {job_id} not found.")
            if job.status in (CANCELLING, CANCELLED):
                job.status, job.completed_at = CANCELLED, job.completed_at or utcnow()
                raise_cancel = True
            else:
                raise_cancel = False
                job.status = RUNNING
                job.started_at = job.started_at or utcnow()
                job.message = message
                job.error_message = None
            payload = dict(job.input)
        if raise_cancel:
            raise JobCancelled(str(job_id))
        return payload

    def progress(self, job_id: str | uuid.UUID, fraction: float, message: str) -> None:
        """Record progress; raises JobCancelled if a cancel was asked for meanwhile."""
        with self.ctx.db.session(write=True) as s:
            job = s.get(Job, _uuid(job_id))
            if job is None:
                raise NotFound(f"Job {job_id} not found.")
            if job.status in (CANCELLING, CANCELLED):
                job.status, job.completed_at = CANCELLED, utcnow()
                cancelled = True
            else:
                cancelled = False
                job.progress = max(0.0, min(1.0, fraction))
                job.message = message
        if cancelled:
            raise JobCancelled(str(job_id))
        log.info(
            "job %s: %.0f%% %s",
            job_id,
            fraction * 100,
            message,
            extra={"job_id": str(job_id)},
        )

    def complete(self, job_id: str | uuid.UUID, result: dict[str, Any]) -> None:
        with self.ctx.db.session(write=True) as s:
            s.execute(
                update(Job)
                .where(Job.id == _uuid(job_id))
                .values(
                    status=COMPLETED,
                    progress=1.0,
                    message="done",
                    result=result,
                    completed_at=utcnow(),
                )
            )

    def fail(self, job_id: str | uuid.UUID, reason: str) -> None:
        """End the job FAILED with a reason, unless it already finished or was cancelled."""
        with self.ctx.db.session(write=True) as s:
            job = s.get(Job, _uuid(job_id))
            if job is None or job.status in FINISHED:
                return
            if job.status == CANCELLING:
                job.status = CANCELLED
            else:
                job.status, job.error_message = FAILED, reason[:4000]
            job.completed_at = utcnow()
        log.warning("job %s failed: %s", job_id, reason, extra={"job_id": str(job_id)})

    def request_cancel(
        self, job_id: str | uuid.UUID, kind: str | None = None
    ) -> dict[str, Any]:
        with self.ctx.db.session(write=True) as s:
            job = s.get(Job, _uuid(job_id))
            if job is None or (kind is not None and job.kind != kind):
                raise NotFound(f"Job {job_id} not found.")
            if job.status in FINISHED:
                raise Conflict(f"Job {job_id} has already finished ({job.status}).")
            job.status = CANCELLED if job.status == PENDING else CANCELLING
            if job.status == CANCELLED:
                job.completed_at = utcnow()
        self.ctx.launcher.cancel(str(job_id), "cancelled by the user")
        return self.get(job_id)
