"""HTTP routes of spec section 7 (bias): the protected attributes' configuration."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from functions.api.deps import Paging, ProtectedAttributesDep
from functions.api.envelope import ERRORS_404_422, ERRORS_422, Envelope, ok, ok_page
from functions.api.schemas_bias import (
    ATTRIBUTE_NAME_PATTERN,
    AttributeQuery,
    ConfigureAttributeRequest,
    ConfiguredAttribute,
    ProtectedAttribute,
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
