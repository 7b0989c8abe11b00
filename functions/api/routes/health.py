"""GET /health: database and storage reachability (503 when either is down)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from functions.api.deps import HealthServiceDep
from functions.api.envelope import Envelope, ok
from functions.api.schemas import HealthReport

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    summary="Database and storage reachability",
    response_model=Envelope[HealthReport],
    responses={
        503: {
            "model": Envelope[HealthReport],
            "description": "Degraded: the database or the storage is unreachable",
        }
    },
)
def health(health: HealthServiceDep) -> JSONResponse:
    report = health.check()
    return ok(report, 200 if report["status"] == "ok" else 503)
