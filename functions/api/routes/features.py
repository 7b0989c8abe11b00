"""HTTP routes of spec section 2 (features)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.deps import FeatureServiceDep, Paging, PreviewRowsQ
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_404_422,
    ERRORS_422,
    Envelope,
    ok,
    ok_page,
)
from functions.api.schemas import FeatureJob, JobAccepted
from functions.api.schemas_features import (
    FeaturePreview,
    FeatureSet,
    FeatureSetSummary,
)
from shared.services.feature_commands import ComputeCommand

router = APIRouter(prefix="/features", tags=["features"])


class ComputeFeaturesRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "dataset_id": "3f6c1b7e-0000-4000-8000-000000000000",
                "feature_groups": [
                    "transaction",
                    "behavioral",
                    "temporal",
                    "aggregation",
                ],
                "output_name": "fraud_features_v1",
                "column_mapping": {
                    "user_id": "customer_id",
                    "timestamp": "tx_datetime",
                },
                "config": {"windows": ["1h", "24h", "7d", "30d"], "label_delay": "7d"},
            }
        },
    )

    dataset_id: str = Field(description="Dataset to compute features on")
    dataset_version: str | None = Field(None, description="Default: the latest version")
    feature_groups: list[str] | None = Field(
        None,
        description="transaction, behavioral, temporal, aggregation (default: all)",
    )
    output_name: str | None = Field(None, max_length=255)
    column_mapping: dict[str, str] | None = Field(
        None, description="{role: dataset column}, for datasets with other column names"
    )
    config: dict[str, Any] | None = Field(
        None,
        description="windows, label_delay, fraud_rate_windows, "
        "user_fraud_rate_windows, amount_ratio_windows, distinct_windows",
    )
    carry_columns: list[str] | None = Field(
        None,
        description="Extra dataset columns copied next to the features (default: "
        "gender and age_group when present, for bias audits)",
    )

    def to_command(self) -> ComputeCommand:
        groups, carried = self.feature_groups, self.carry_columns
        return ComputeCommand(
            dataset_id=self.dataset_id,
            dataset_version=self.dataset_version,
            feature_groups=tuple(groups) if groups is not None else None,
            output_name=self.output_name,
            column_mapping=self.column_mapping or {},
            config=self.config or {},
            carry_columns=tuple(carried) if carried is not None else None,
        )


@router.post(
    "/compute",
    status_code=202,
    summary="Start a feature computation job",
    response_model=Envelope[JobAccepted],
    responses=ERRORS_404_409_422,
)
def compute_features(
    body: ComputeFeaturesRequest, features: FeatureServiceDep
) -> JSONResponse:
    return ok(features.request_compute(body.to_command()), 202)


@router.get(
    "/sets",
    summary="List feature sets",
    response_model=Envelope[list[FeatureSetSummary]],
    responses=ERRORS_422,
)
def list_feature_sets(
    features: FeatureServiceDep,
    paging: Paging,
    dataset_id: UUID | None = Query(None, description="Only this dataset's sets"),
) -> JSONResponse:
    return ok_page(
        features.list_sets(
            paging.page, paging.page_size, str(dataset_id) if dataset_id else None
        )
    )


@router.get(
    "/sets/{feature_set_id}",
    summary="Feature set with features and statistics",
    response_model=Envelope[FeatureSet],
    responses=ERRORS_404,
)
def get_feature_set(feature_set_id: str, features: FeatureServiceDep) -> JSONResponse:
    return ok(features.get_set(feature_set_id))


@router.get(
    "/sets/{feature_set_id}/preview",
    summary="First N rows of a feature set",
    response_model=Envelope[FeaturePreview],
    responses=ERRORS_404_422,
)
def preview_feature_set(
    feature_set_id: str, features: FeatureServiceDep, rows: PreviewRowsQ = 10
) -> JSONResponse:
    return ok(features.preview(feature_set_id, rows))


@router.get(
    "/jobs/{job_id}",
    summary="Feature job status; feature_set_id once done",
    response_model=Envelope[FeatureJob],
    responses=ERRORS_404,
)
def get_feature_job(job_id: str, features: FeatureServiceDep) -> JSONResponse:
    return ok(features.get_job(job_id))
