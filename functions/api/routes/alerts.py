"""HTTP routes of spec section 8 (alerts): listing, details, acknowledge, dismiss,
and the alert rules."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from functions.api.deps import AlertRulesDep, AlertServiceDep, Paging
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_404_422,
    ERRORS_422,
    Envelope,
    ok,
    ok_page,
)
from functions.api.schemas_alerts import (
    AcknowledgeBody,
    AlertRuleBody,
    AlertRuleView,
    AlertView,
    DismissBody,
)
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


@router.post(
    "/rules",
    status_code=201,
    summary="Create an alert rule",
    response_model=Envelope[AlertRuleView],
    responses=ERRORS_404_422,
)
def create_rule(body: AlertRuleBody, rules: AlertRulesDep) -> JSONResponse:
    return ok(rules.create(body.model_dump(mode="json")), status_code=201)


@router.get(
    "/rules",
    summary="List the alert rules",
    response_model=Envelope[list[AlertRuleView]],
    responses=ERRORS_422,
)
def list_rules(rules: AlertRulesDep, paging: Paging) -> JSONResponse:
    return ok_page(rules.list_rules(paging.page, paging.page_size))


@router.put(
    "/rules/{rule_id}",
    summary="Replace an alert rule",
    response_model=Envelope[AlertRuleView],
    responses=ERRORS_404_422,
)
def update_rule(
    rule_id: str, body: AlertRuleBody, rules: AlertRulesDep
) -> JSONResponse:
    return ok(rules.update(rule_id, body.model_dump(mode="json")))


@router.delete(
    "/rules/{rule_id}",
    status_code=204,
    summary="Delete an alert rule (its alerts stay)",
    responses=ERRORS_404,
)
def delete_rule(rule_id: str, rules: AlertRulesDep) -> Response:
    rules.delete(rule_id)
    return Response(status_code=204)


@router.get(
    "/{alert_id}",
    summary="Alert details",
    response_model=Envelope[AlertView],
    responses=ERRORS_404,
)
def get_alert(alert_id: str, alerts: AlertServiceDep) -> JSONResponse:
    return ok(alerts.get(alert_id))


@router.post(
    "/{alert_id}/acknowledge",
    summary="Acknowledge an alert (who and when are recorded)",
    response_model=Envelope[AlertView],
    responses=ERRORS_404_409_422,
)
def acknowledge_alert(
    alert_id: str, alerts: AlertServiceDep, body: AcknowledgeBody | None = None
) -> JSONResponse:
    given = body or AcknowledgeBody()
    return ok(alerts.acknowledge(alert_id, given.note, given.actor))


@router.post(
    "/{alert_id}/dismiss",
    summary="Dismiss an alert with a reason",
    response_model=Envelope[AlertView],
    responses=ERRORS_404_409_422,
)
def dismiss_alert(
    alert_id: str, body: DismissBody, alerts: AlertServiceDep
) -> JSONResponse:
    return ok(alerts.dismiss(alert_id, body.reason, body.actor))
