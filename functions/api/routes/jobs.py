"""Generic job status for every kind of long work (GET /jobs, /jobs/{id}, cancel)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from functions.api.deps import Ctx, PageQ, PageSizeQ
from functions.api.envelope import ok

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", summary="List jobs of every kind")
def list_jobs(
    ctx: Ctx,
    page: PageQ = 1,
    page_size: PageSizeQ = 20,
    kind: str | None = Query(None, description="features, retraining, ..."),
    status: str | None = Query(None, description="PENDING, RUNNING, COMPLETED, ..."),
) -> JSONResponse:
    from shared.jobs.service import JobService

    result = JobService(ctx).list_jobs(page, page_size, kind, status)
    return ok(result.items, pagination=result.meta)


@router.get("/{job_id}", summary="Status, progress and result of a job")
def get_job(job_id: str, ctx: Ctx) -> JSONResponse:
    from shared.jobs.service import JobService

    return ok(JobService(ctx).get(job_id))


@router.post("/{job_id}/cancel", summary="Cancel a pending or running job")
def cancel_job(job_id: str, ctx: Ctx) -> JSONResponse:
    from shared.jobs.service import JobService

    return ok(JobService(ctx).request_cancel(job_id))
