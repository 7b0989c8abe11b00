"""Generic job status for every kind of long work, training included (GET /jobs,
/jobs/{id}, cancel)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from functions.api.deps import JobServiceDep, Paging
from functions.api.envelope import ERRORS_404, ERRORS_404_409, ERRORS_422, Envelope, ok
from functions.api.schemas import Job

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get(
    "",
    summary="List jobs of every kind",
    response_model=Envelope[list[Job]],
    responses=ERRORS_422,
)
def list_jobs(
    jobs: JobServiceDep,
    paging: Paging,
    kind: str | None = Query(None, description="features, training, ..."),
    status: str | None = Query(None, description="PENDING, RUNNING, COMPLETED, ..."),
) -> JSONResponse:
    result = jobs.list_jobs(paging.page, paging.page_size, kind, status)
    return ok(result.items, pagination=result.meta)


@router.get(
    "/{job_id}",
    summary="Status, progress and result of a job",
    response_model=Envelope[Job],
    responses=ERRORS_404,
)
def get_job(job_id: str, jobs: JobServiceDep) -> JSONResponse:
    return ok(jobs.get(job_id))


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a pending or running job",
    response_model=Envelope[Job],
    responses=ERRORS_404_409,
)
def cancel_job(job_id: str, jobs: JobServiceDep) -> JSONResponse:
    return ok(jobs.request_cancel(job_id))
