"""HTTP routes of spec section 8 (alerts): listing and details."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from functions.api.deps import AlertServiceDep, Paging
from functions.api.envelope import ERRORS_404, ERRORS_422, Envelope, ok, ok_page
from functions.api.schemas_monitoring import AlertView
from shared.services.monitoring_commands import AlertQuery

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get(
    "",
    summary="List alerts, newest first",
    response_model=Envelope[list[AlertView]],
    responses=ERRORS_422,
)
def list_alerts(
    alerts: AlertServiceDep,
    paging: Paging,
    status: Literal["ACTIVE", "ACKNOWLEDGED", "DISMISSED"] | None = Query(None),
    severity: Literal["INFO", "WARNING", "CRITICAL"] | None = Query(None),
    type: Literal["DRIFT", "BIAS", "PERFORMANCE", "LATENCY"] | None = Query(None),  # noqa: A002 (the spec's name)
    model_id: uuid.UUID | None = Query(None),
) -> JSONResponse:
    query = AlertQuery(paging.page, paging.page_size, status, severity, type, model_id)
    return ok_page(alerts.list_alerts(query))


@router.get(
    "/{alert_id}",
    summary="Alert details",
    response_model=Envelope[AlertView],
    responses=ERRORS_404,
)
def get_alert(alert_id: str, alerts: AlertServiceDep) -> JSONResponse:
    return ok(alerts.get(alert_id))
