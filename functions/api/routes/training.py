"""HTTP routes of spec section 3 (training)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.deps import Paging, TrainingServiceDep
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409,
    ERRORS_404_409_422,
    ERRORS_422,
    Envelope,
    ok,
)
from functions.api.schemas import JobAccepted, Record

router = APIRouter(prefix="/training", tags=["training"])


class TimeSplit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["time"] = Field("time", description="'time' (recommended for fraud)")
    train_start: str = Field(min_length=1)
    train_end: str = Field(min_length=1)
    gap: str | None = Field("7d", description="Label delay between train and test")
    test_start: str = Field(min_length=1)
    test_end: str = Field(min_length=1)


def _param_schema(param: Any) -> dict[str, Any]:
    if param.type == "bool":
        return {"type": "boolean"}
    if param.type == "categorical":
        return {"enum": list(param.choices)}
    number: dict[str, Any] = {"type": "integer" if param.type == "int" else "number"}
    if param.minimum is not None:
        number["minimum"] = param.minimum
    if param.maximum is not None:
        number["maximum"] = param.maximum
    if param.choices:
        return {"anyOf": [number, {"enum": list(param.choices)}]}
    return number


def _algorithm_schemas(schema: dict[str, Any]) -> None:
    """The algorithms and each one's hyperparameters (names, types, ranges), from the
    catalog the service validates with; built when the document is, so that importing
    the routes does not import the training libraries."""
    from ml.training.algorithms import ALGORITHMS

    schema["properties"]["algorithm"]["enum"] = sorted(ALGORITHMS)
    schema["allOf"] = [
        {
            "if": {"properties": {"algorithm": {"const": name}}},
            "then": {
                "properties": {
                    "hyperparameters": {
                        "anyOf": [
                            {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    p.name: _param_schema(p)
                                    for p in spec.hyperparameters
                                },
                            },
                            {"type": "null"},
                        ]
                    }
                }
            },
        }
        for name, spec in ALGORITHMS.items()
    ]
    schema["example"] = _EXAMPLE


_EXAMPLE = {
    "name": "xgboost_fraud_v2",
    "feature_set_id": "uuid",
    "algorithm": "xgboost",
    "hyperparameters": {"max_depth": 6, "learning_rate": 0.1, "n_estimators": 200},
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


class StartTrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_algorithm_schemas)
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
        ge=0.1,
        le=0.95,
        description="Random stratified split: training fraction (ignored with split)",
    )
    split: TimeSplit | None = Field(None, description="Time-based split (recommended)")
    target_column: str = "is_fraud"
    cost_ratio: float | None = Field(
        None,
        gt=0,
        description="Cost of a missed fraud / cost of a false alarm; sets the threshold "
        "that minimises cost. Default: the threshold that maximises F1.",
    )
    seed: int | None = 42

    def to_request(self) -> dict[str, Any]:
        """The request as the service takes it: unset split options left out."""
        request = self.model_dump()
        if self.split is None:
            request.pop("split")
        if self.train_test_split is None:
            request.pop("train_test_split")
        return request


class TrainingMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    train_loss: float | None = None
    val_loss: float | None = None
    val_auc: float | None = None


class TrainingJobView(BaseModel):
    job_id: str
    name: str
    algorithm: str
    feature_set_id: str | None
    status: str = Field(
        description="QUEUED, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED"
    )
    progress: float = Field(ge=0, le=1)
    current_epoch: int | None
    total_epochs: int | None
    metrics: TrainingMetrics
    hyperparameters: Record | None
    config: Record | None
    model_id: str | None
    error_message: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    eta_seconds: float | None


@router.get(
    "/algorithms",
    summary="Algorithms and their hyperparameters",
    response_model=Envelope[list[Record]],
)
def algorithms(training: TrainingServiceDep) -> JSONResponse:
    return ok(training.algorithms())


@router.post(
    "/jobs",
    status_code=202,
    summary="Start a training job",
    response_model=Envelope[JobAccepted],
    responses=ERRORS_404_409_422,
)
def start_training(
    body: StartTrainingRequest, training: TrainingServiceDep
) -> JSONResponse:
    return ok(training.start(body.to_request()), 202)


@router.get(
    "/jobs",
    summary="List training jobs",
    response_model=Envelope[list[TrainingJobView]],
    responses=ERRORS_422,
)
def list_training_jobs(
    training: TrainingServiceDep,
    paging: Paging,
    status: str | None = Query(None, description="QUEUED, RUNNING, COMPLETED, ..."),
) -> JSONResponse:
    result = training.list_jobs(paging.page, paging.page_size, status)
    return ok(result.items, pagination=result.meta)


@router.get(
    "/jobs/{job_id}",
    summary="Status, progress, live metrics, ETA, model_id",
    response_model=Envelope[TrainingJobView],
    responses=ERRORS_404,
)
def get_training_job(job_id: str, training: TrainingServiceDep) -> JSONResponse:
    return ok(training.get(job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    summary="Cancel a queued or running job",
    response_model=Envelope[TrainingJobView],
    responses=ERRORS_404_409,
)
def cancel_training_job(job_id: str, training: TrainingServiceDep) -> JSONResponse:
    return ok(training.cancel(job_id))
