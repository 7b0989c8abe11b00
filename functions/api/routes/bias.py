"""HTTP routes of spec section 7 (bias): the protected attributes' configuration, bias
audits (a job each), the latest audit's metrics and its HTML report."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, JSONResponse

from functions.api.deps import BiasAuditsDep, Paging, ProtectedAttributesDep
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_404_422,
    ERRORS_422,
    Envelope,
    ok,
    ok_page,
)
from functions.api.schemas import JobAccepted
from functions.api.schemas_bias import (
    ATTRIBUTE_NAME_PATTERN,
    AttributeQuery,
    BiasAuditRequest,
    BiasMetrics,
    BiasMetricsQuery,
    ConfigureAttributeRequest,
    ConfiguredAttribute,
    ProtectedAttribute,
    Source,
)

router = APIRouter(prefix="/bias", tags=["bias"])

AttributeNamePath = Annotated[str, Path(max_length=100, pattern=ATTRIBUTE_NAME_PATTERN)]


@router.get(
    "/protected-attributes",
    summary="List protected attributes, by name",
    response_model=Envelope[list[ProtectedAttribute]],
    responses=ERRORS_422,
)
def list_protected_attributes(
    attributes: ProtectedAttributesDep,
    paging: Paging,
    active: bool | None = Query(
        None, description="true: only active ones, false: only retired ones"
    ),
) -> JSONResponse:
    query = AttributeQuery(paging.page, paging.page_size, active)
    return ok_page(attributes.list_attributes(query))


@router.post(
    "/protected-attributes",
    summary="Configure a protected attribute (created, or replaced by name)",
    response_model=Envelope[ConfiguredAttribute],
    responses=ERRORS_422,
)
def configure_protected_attribute(
    body: ConfigureAttributeRequest, attributes: ProtectedAttributesDep
) -> JSONResponse:
    return ok(attributes.configure(body.to_command()))


@router.delete(
    "/protected-attributes/{attribute_name}",
    summary="Retire a protected attribute (kept, inactive)",
    response_model=Envelope[ProtectedAttribute],
    responses=ERRORS_404_422,
)
def retire_protected_attribute(
    attribute_name: AttributeNamePath, attributes: ProtectedAttributesDep
) -> JSONResponse:
    return ok(attributes.retire(attribute_name))


@router.post(
    "/audit",
    status_code=202,
    summary="Start a bias audit of a model (followed through GET /jobs/{id})",
    response_model=Envelope[JobAccepted],
    responses=ERRORS_404_409_422,
)
def start_bias_audit(body: BiasAuditRequest, audits: BiasAuditsDep) -> JSONResponse:
    return ok(audits.request(body.to_command()), 202)


@router.get(
    "/metrics",
    summary="The bias metrics of a model's latest audit",
    response_model=Envelope[BiasMetrics],
    responses=ERRORS_404_422,
)
def bias_metrics(
    audits: BiasAuditsDep,
    model_id: Annotated[uuid.UUID, Query(description="The audited model")],
    source: Annotated[
        Source | None, Query(description="Only audits of this source")
    ] = None,
) -> JSONResponse:
    return ok(audits.latest(BiasMetricsQuery(str(model_id), source)))


@router.get(
    "/reports/{audit_id}",
    summary="A bias audit's self-contained HTML report (download)",
    responses={
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The report, as an attachment",
        },
        **ERRORS_404,
    },
)
def bias_report(audit_id: str, audits: BiasAuditsDep) -> HTMLResponse:
    return HTMLResponse(
        audits.report(audit_id),
        headers={
            "Content-Disposition": f'attachment; filename="bias-report-{audit_id}.html"'
        },
    )
