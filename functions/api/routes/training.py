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
from shared.services.training_command import SplitRequest, StartTraining

router = APIRouter(prefix="/training", tags=["training"])


class Split(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["out_of_time", "time", "random"] | None = Field(
        None,
        description="out_of_time (the default): test on the latest period; time: the "
        "windows below; random: stratified rows (leaks for fraud data: the job warns)",
    )
    train_start: str | None = Field(None, min_length=1)
    train_end: str | None = Field(None, min_length=1)
    test_start: str | None = Field(None, min_length=1)
    test_end: str | None = Field(None, min_length=1)
    gap: str | None = Field(
        None,
        description="Time between training and test (and between fit and validation); "
        "default: the feature set's label delay",
    )
    test_fraction: float | None = Field(
        None, ge=0.01, le=0.9, description="out_of_time: share of the time span tested"
    )
    validation_fraction: float | None = Field(
        None,
        ge=0.01,
        le=0.9,
        description="Share of the training period (its end) kept for validation",
    )

    def to_command(self) -> SplitRequest:
        return SplitRequest(**self.model_dump())


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


class FairnessMitigation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    method: Literal["threshold_optimizer", "exponentiated_gradient"]
    constraint: Literal["demographic_parity", "equalized_odds"]
    attribute: str = Field(
        min_length=1, description="Name of an active protected attribute"
    )


class StartTrainingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_algorithm_schemas)
    name: str = Field(
        min_length=1, max_length=255, description="Model name (versions per name)"
    )
    feature_set_id: str
    algorithm: str = Field(
        description="xgboost, lightgbm, isolation_forest, neural_net"
    )
    hyperparameters: dict[str, Any] | None = Field(
        None,
        description="Omitted: a small search (at most 12 configurations, "
        "search_seconds) judged on the validation period",
    )
    train_test_split: float | None = Field(
        None,
        ge=0.1,
        le=0.95,
        description="Asks for a random stratified split with this training fraction "
        "(leaks for fraud data; default: out of time)",
    )
    split: Split | None = Field(None, description="Default: out of time")
    target_column: str = "is_fraud"
    cost_missed_fraud: float | None = Field(
        None,
        gt=0,
        description="Cost of a missed fraud (default 10); giving a cost sets the "
        "threshold that minimises cost on validation. Default rule: best F1.",
    )
    cost_false_alarm: float | None = Field(
        None, gt=0, description="Cost of a false alarm (default 1)"
    )
    cost_ratio: float | None = Field(
        None,
        gt=0,
        description="cost_missed_fraud / cost_false_alarm in one number (older form)",
    )
    search_seconds: float | None = Field(
        None, ge=0, le=86_400, description="Time budget of the search (default 300)"
    )
    seed: int = 42
    allow_protected_features: bool = Field(
        False,
        description="Train although the feature set uses a protected attribute's "
        "column (or gender / age_group) as a feature; recorded in the job config",
    )
    fairness_mitigation: FairnessMitigation | None = Field(
        None,
        description="Train a mitigated model beside the plain one; the job reports "
        "both models' trade-off",
    )

    def to_command(self) -> StartTraining:
        fields = self.model_dump(exclude={"split", "fairness_mitigation"})
        mitigation = self.fairness_mitigation
        fields["fairness_mitigation"] = (
            mitigation.model_dump() if mitigation is not None else None
        )
        split = self.split.to_command() if self.split is not None else None
        return StartTraining(**fields, split=split)


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


class HyperparameterView(BaseModel):
    name: str
    type: str = Field(description="int, float, categorical, bool")
    default: Any
    description: str
    minimum: float | None
    maximum: float | None
    choices: list[Any] | None = Field(
        description="categorical: the values; numeric: literal values allowed besides "
        "the range"
    )
    log_scale: bool


class AlgorithmView(BaseModel):
    name: str
    title: str
    description: str
    supervised: bool
    iterations_param: str = Field(description="The parameter counting iterations")
    hyperparameters: list[HyperparameterView]


@router.get(
    "/algorithms",
    summary="Algorithms and their hyperparameters",
    response_model=Envelope[list[AlgorithmView]],
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
    return ok(training.start(body.to_command()), 202)


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
