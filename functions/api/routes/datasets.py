"""HTTP routes of spec section 1 (datasets): parse, call the service, shape the answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from functions.api.deps import DatasetServiceDep, Paging, PreviewRowsQ, SettingsDep
from functions.api.envelope import Envelope, errors, ok, ok_page
from functions.api.multipart import read_form
from functions.api.schemas_datasets import (
    Dataset,
    DatasetDetail,
    DatasetPreview,
    DatasetSchema,
)
from shared.config import Settings
from shared.errors import ValidationFailed, field_error
from shared.services import dataset_form as form_rules
from shared.services.upload_spool import Upload, upload_workdir

router = APIRouter(prefix="/datasets", tags=["datasets"])


def _upload_doc(*, new_dataset: bool) -> dict[str, Any]:
    """The form as ``shared.services.dataset_form`` checks it: a part that breaks one
    of these rules gets a 422 naming it."""
    properties: dict[str, Any] = {
        "description": {
            "type": "string",
            "maxLength": form_rules.DESCRIPTION_MAX,
            "pattern": form_rules.DESCRIPTION_PATTERN,
            "description": "Free text (no NUL characters)",
        },
        "file": {
            "type": "string",
            "format": "binary",
            "description": "CSV (UTF-8, header row) or Parquet",
        },
    }
    if new_dataset:
        properties = {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": form_rules.NAME_MAX,
                "pattern": form_rules.NAME_PATTERN,
                "description": "Dataset name, unique: no control characters, not "
                "only spaces (surrounding spaces are dropped)",
            },
            **properties,
        }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["name", "file"] if new_dataset else ["file"],
                        "properties": properties,
                    },
                }
            },
        }
    }


async def _receive(
    request: Request, settings: Settings, tmp: Path
) -> tuple[dict[str, str], Upload]:
    form = await read_form(request, tmp, settings.max_upload_bytes)
    form_rules.check_single(form.repeated)
    if form.file_path is None:
        raise ValidationFailed(
            "The form has no 'file' part.", field_error("file", "Required field")
        )
    upload = Upload(form.file_path, form.filename, form.content_type, form.size)
    return form.fields, upload


@router.post(
    "",
    status_code=201,
    openapi_extra=_upload_doc(new_dataset=True),
    summary="Upload a new dataset",
    response_model=Envelope[DatasetDetail],
    responses=errors(409, 413, 415, 422, 503),
)
async def create_dataset(
    request: Request, datasets: DatasetServiceDep, settings: SettingsDep
) -> JSONResponse:
    with upload_workdir(settings, "upload-") as tmp:
        fields, upload = await _receive(request, settings, tmp)
        data = await run_in_threadpool(
            datasets.create,
            fields.get("name"),
            fields.get("description"),
            upload,
        )
    return ok(data, 201)


@router.get(
    "",
    summary="List datasets",
    response_model=Envelope[list[Dataset]],
    responses=errors(422),
)
def list_datasets(
    datasets: DatasetServiceDep,
    paging: Paging,
    name: str | None = Query(
        None,
        description="Only datasets whose name contains this text (case-insensitive; "
        "% and _ are plain characters)",
    ),
) -> JSONResponse:
    return ok_page(datasets.list_datasets(paging.page, paging.page_size, name))


@router.get(
    "/{dataset_id}",
    summary="Dataset details with its versions",
    response_model=Envelope[DatasetDetail],
    responses=errors(404),
)
def get_dataset(dataset_id: str, datasets: DatasetServiceDep) -> JSONResponse:
    return ok(datasets.get(dataset_id))


@router.delete(
    "/{dataset_id}",
    status_code=204,
    summary="Delete a dataset and its files",
    description="Refused with 409 CONFLICT, naming them, while feature sets or models "
    "depend on the dataset, unless cascade=true; cascade deletes them too, but never "
    "a model in PRODUCTION or one with logged predictions (409 naming it), and "
    "nothing while a job still uses any of it. A delete interrupted half-way "
    "(storage error, crash) leaves the dataset hidden; repeat it to finish.",
    responses=errors(404, 409, 422, 503),
)
def delete_dataset(
    dataset_id: str,
    datasets: DatasetServiceDep,
    cascade: bool = Query(
        False,
        description="Also delete the feature sets computed from the dataset and the "
        "models trained on them, with their files",
    ),
) -> Response:
    datasets.delete(dataset_id, cascade)
    return Response(status_code=204)


@router.get(
    "/{dataset_id}/schema",
    summary="Column names and types",
    response_model=Envelope[DatasetSchema],
    responses=errors(404),
)
def dataset_schema(
    dataset_id: str,
    datasets: DatasetServiceDep,
    version: str | None = Query(None, description="Default: latest"),
) -> JSONResponse:
    return ok(datasets.schema(dataset_id, version))


@router.get(
    "/{dataset_id}/preview",
    summary="First N rows",
    response_model=Envelope[DatasetPreview],
    responses=errors(404, 422, 503),
)
def dataset_preview(
    dataset_id: str,
    datasets: DatasetServiceDep,
    rows: PreviewRowsQ = 10,
    version: str | None = Query(None, description="Default: latest"),
) -> JSONResponse:
    return ok(datasets.preview(dataset_id, rows, version))


@router.post(
    "/{dataset_id}/versions",
    status_code=201,
    openapi_extra=_upload_doc(new_dataset=False),
    summary="Upload a new version of a dataset",
    response_model=Envelope[DatasetDetail],
    responses=errors(404, 413, 415, 422, 503),
)
async def create_version(
    dataset_id: str,
    request: Request,
    datasets: DatasetServiceDep,
    settings: SettingsDep,
) -> JSONResponse:
    with upload_workdir(settings, "upload-") as tmp:
        fields, upload = await _receive(request, settings, tmp)
        data = await run_in_threadpool(
            datasets.add_version,
            dataset_id,
            fields.get("description"),
            upload,
        )
    return ok(data, 201)
