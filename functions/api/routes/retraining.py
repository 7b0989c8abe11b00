"""HTTP routes of spec section 9 (retraining)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from functions.api.deps import Paging, RetrainingServiceDep
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_422,
    Envelope,
    ok,
    ok_page,
)
from functions.api.schemas_retraining import (
    PromoteChallengerRequest,
    RetrainingAccepted,
    RetrainingJob,
    RetrainingQuery,
    TriggerRetrainingRequest,
)

router = APIRouter(prefix="/retraining", tags=["retraining"])

Status = Literal["PENDING", "RUNNING", "CANCELLING", "COMPLETED", "FAILED", "CANCELLED"]


@router.post(
    "/trigger",
    status_code=202,
    summary="Retrain a model on new data: a challenger against it (the champion)",
    response_model=Envelope[RetrainingAccepted],
    responses=ERRORS_404_409_422,
)
def trigger_retraining(
    body: TriggerRetrainingRequest, retraining: RetrainingServiceDep
) -> JSONResponse:
    return ok(retraining.trigger(body.to_command()), 202)


@router.get(
    "/jobs",
    summary="List retraining jobs, newest first",
    response_model=Envelope[list[RetrainingJob]],
    responses=ERRORS_422,
)
def list_retraining_jobs(
    retraining: RetrainingServiceDep,
    paging: Paging,
    status: Status | None = Query(None),
) -> JSONResponse:
    query = RetrainingQuery(paging.page, paging.page_size, status)
    return ok_page(retraining.list_jobs(query))


@router.get(
    "/jobs/{job_id}",
    summary="Stage, progress, champion and challenger on the holdout, gates",
    response_model=Envelope[RetrainingJob],
    responses=ERRORS_404,
)
def get_retraining_job(job_id: str, retraining: RetrainingServiceDep) -> JSONResponse:
    return ok(retraining.get(job_id))


@router.post(
    "/jobs/{job_id}/promote",
    summary="Promote the job's challenger to production through the same gates",
    response_model=Envelope[RetrainingJob],
    responses=ERRORS_404_409_422,
)
def promote_challenger(
    job_id: str, body: PromoteChallengerRequest, retraining: RetrainingServiceDep
) -> JSONResponse:
    return ok(retraining.promote(body.to_command(job_id)))
