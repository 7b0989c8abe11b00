"""HTTP routes of spec section 3 (training)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.deps import Ctx, PageQ, PageSizeQ
from functions.api.envelope import ok

router = APIRouter(prefix="/training", tags=["training"])


class TimeSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = Field("time", description="'time' (recommended for fraud)")
    train_start: str
    train_end: str
    gap: str | None = Field("7d", description="Label delay between train and test")
    test_start: str
    test_end: str


class StartTrainingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "name": "xgboost_fraud_v2",
                "feature_set_id": "uuid",
                "algorithm": "xgboost",
                "hyperparameters": {
                    "max_depth": 6,
                    "learning_rate": 0.1,
                    "n_estimators": 200,
                },
                "split": {
                    "type": "time",
                    "train_start": "2026-01-01",
                    "train_end": "2026-02-28",
                    "gap": "7d",
                    "test_start": "2026-03-08",
                    "test_end": "2026-03-31",
                },
                "target_column": "is_fraud",
            }
        },
    )
    name: str = Field(
        min_length=1, max_length=255, description="Model name (versions per name)"
    )
    feature_set_id: str
    algorithm: str = Field(
        description="xgboost, lightgbm, isolation_forest, neural_net"
    )
    hyperparameters: dict[str, Any] | None = None
    train_test_split: float | None = Field(
        0.8,
        description="Random stratified split: training fraction (ignored with split)",
    )
    split: TimeSplit | None = Field(None, description="Time-based split (recommended)")
    target_column: str = "is_fraud"
    cost_ratio: float | None = Field(
        None,
        description="Cost of a missed fraud / cost of a false alarm; sets the threshold "
        "that minimises cost. Default: the threshold that maximises F1.",
    )
    seed: int | None = 42


@router.get("/algorithms", summary="Algorithms and their hyperparameters")
def algorithms() -> JSONResponse:
    from ml.training.algorithms import algorithm_catalog

    return ok(algorithm_catalog())


@router.post("/jobs", status_code=202, summary="Start a training job")
def start_training(body: StartTrainingRequest, ctx: Ctx) -> JSONResponse:
    from shared.services.training import TrainingService

    request = body.model_dump()
    if body.split is None:
        request.pop("split")
    return ok(TrainingService(ctx).start(request), 202)


@router.get("/jobs", summary="List training jobs")
def list_training_jobs(
    ctx: Ctx,
    page: PageQ = 1,
    page_size: PageSizeQ = 20,
    status: str | None = Query(None),
) -> JSONResponse:
    from shared.services.training import TrainingService

    result = TrainingService(ctx).list_jobs(page, page_size, status)
    return ok(result.items, pagination=result.meta)


@router.get("/jobs/{job_id}", summary="Status, progress, live metrics, ETA, model_id")
def get_training_job(job_id: str, ctx: Ctx) -> JSONResponse:
    from shared.services.training import TrainingService

    return ok(TrainingService(ctx).get(job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a queued or running job")
def cancel_training_job(job_id: str, ctx: Ctx) -> JSONResponse:
    from shared.services.training import TrainingService

    return ok(TrainingService(ctx).cancel(job_id))
