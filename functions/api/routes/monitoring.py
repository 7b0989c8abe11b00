"""HTTP routes of spec section 6 (monitoring: drift audits and performance)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse

from functions.api.deps import DriftAuditsDep, PerformanceServiceDep
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_404_422,
    Envelope,
    ok,
)
from functions.api.schemas import Job, JobAccepted
from functions.api.schemas_monitoring import (
    DriftComputeRequest,
    DriftResult,
    FeatureDrift,
    Performance,
    StoredWindow,
    Window,
)
from shared.services.monitoring_commands import DriftQuery, PerformanceQuery

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

ModelId = Annotated[uuid.UUID, Query(description="The audited model")]
WindowQ = Annotated[StoredWindow, Query(description="custom: explicit bounds")]


@router.post(
    "/drift/compute",
    status_code=202,
    summary="Start a drift audit of a model's logged predictions over a window",
    response_model=Envelope[JobAccepted],
    responses=ERRORS_404_409_422,
)
def compute_drift(body: DriftComputeRequest, audits: DriftAuditsDep) -> JSONResponse:
    return ok(audits.request(body.to_command()), 202)


@router.get(
    "/drift/jobs/{job_id}",
    summary="Status and result of a drift audit job",
    response_model=Envelope[Job],
    responses=ERRORS_404,
)
def drift_job(job_id: str, audits: DriftAuditsDep) -> JSONResponse:
    return ok(audits.job(job_id))


@router.get(
    "/drift",
    summary="The latest drift audit of a model over a window",
    response_model=Envelope[DriftResult],
    responses=ERRORS_404_422,
)
def latest_drift(
    audits: DriftAuditsDep,
    model_id: ModelId,
    window: WindowQ = "24h",
) -> JSONResponse:
    return ok(audits.latest(DriftQuery(str(model_id), window)))


@router.get(
    "/drift/features",
    summary="Per feature: histograms on the training bins, quantiles, drift history",
    response_model=Envelope[FeatureDrift],
    responses=ERRORS_404_422,
)
def feature_drift(
    audits: DriftAuditsDep,
    model_id: ModelId,
    window: WindowQ = "24h",
    feature: Annotated[
        str | None, Query(max_length=100, description="Only this one")
    ] = None,
) -> JSONResponse:
    return ok(audits.features(DriftQuery(str(model_id), window, feature)))


@router.get(
    "/drift/reports/{audit_id}",
    summary="A drift audit's self-contained HTML report (download)",
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The report, as an attachment",
        },
        **ERRORS_404,
    },
)
def drift_report(audit_id: str, audits: DriftAuditsDep) -> HTMLResponse:
    return HTMLResponse(
        audits.report(audit_id),
        headers={
            "Content-Disposition": f'attachment; filename="drift-report-{audit_id}.html"'
        },
    )


@router.get(
    "/performance",
    summary="Performance over time: volume, fraud rates, scores, latency, metrics",
    response_model=Envelope[Performance],
    responses=ERRORS_404_422,
)
def performance(
    service: PerformanceServiceDep,
    model_id: ModelId,
    window: Annotated[Window, Query(description="Ending now")] = "30d",
    granularity: Annotated[
        str, Query(pattern="^(hour|day)$", description="hour or day")
    ] = "day",
) -> JSONResponse:
    return ok(service.over_time(PerformanceQuery(str(model_id), window, granularity)))
