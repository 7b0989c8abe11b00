"""HTTP routes of spec section 4 (model registry)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from functions.api.deps import (
    BacktestsDep,
    ModelCatalogDep,
    ModelEvaluationsDep,
    ModelRegistryDep,
    Paging,
)
from functions.api.envelope import (
    ERRORS_404,
    ERRORS_404_409_422,
    ERRORS_404_422,
    ERRORS_422,
    Envelope,
    ok,
)
from functions.api.schemas import JobAccepted, Record
from shared.services.backtest import BacktestCommand
from shared.services.model_evaluation import EvaluationQuery

router = APIRouter(prefix="/models", tags=["models"])


# the values as shared.services.registry takes them (kept light here; a test compares)
Metric = Literal["precision", "recall", "f1_score", "auc_roc", "auc_pr", "fpr"]
Operator = Literal["gte", "lte", "eq"]


class BaselineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: Metric
    threshold: float = Field(allow_inf_nan=False)
    operator: Operator = Field(description="gte: at least, lte: at most, eq: equal")


class BaselinesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baselines: list[BaselineIn]


OnlineState = Annotated[
    Literal["keep", "replace"],
    Field(
        description="keep: when the online feature state of the model's feature "
        "configuration is live (transactions scored since its last backfill), the "
        "model continues from it; replace: rebuild it from the model's training data, "
        "forgetting what was scored live",
    ),
]


# a written reason: at least one letter or digit (the same test in the schema and here)
_WRITTEN = "[A-Za-z0-9]"


class PromoteRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "allOf": [
                {
                    "if": {
                        "properties": {flag: {"const": True}},
                        "required": [flag],
                    },
                    "then": {
                        "required": ["reason"],
                        "properties": {
                            "reason": {"type": "string", "pattern": _WRITTEN}
                        },
                    },
                }
                for flag in ("override_baselines", "override_bias")
            ]
        },
    )
    stage: Literal["staging", "production"]
    override_baselines: bool = False
    override_bias: bool = Field(
        False,
        description="Promote to production although the pre-deployment bias audit "
        "is CRITICAL; needs a reason, recorded in the transition",
    )
    reason: str | None = Field(
        None,
        max_length=2000,
        validate_default=True,
        description="Required with override_baselines or override_bias",
    )
    actor: str | None = Field(None, max_length=255, description="Who asks (until SSO)")
    online_state: OnlineState = "keep"

    @field_validator("reason")
    @classmethod
    def _written_for_override(
        cls, reason: str | None, info: ValidationInfo
    ) -> str | None:
        for flag in ("override_baselines", "override_bias"):
            if info.data.get(flag) and not re.search(_WRITTEN, reason or ""):
                raise ValueError(f"{flag} needs a written reason")
        return reason


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)
    actor: str | None = Field(None, max_length=255)
    online_state: OnlineState = "keep"


class ModelSummary(BaseModel):
    id: str
    name: str
    version: str
    algorithm: str
    status: str = Field(description="TRAINED, STAGING, PRODUCTION, ARCHIVED")
    metrics: Record | None
    threshold: float | None
    onnx_max_abs_diff: float | None
    feature_set_id: str | None
    storage_path: str
    promoted_at: str | None
    created_at: str | None


class BaselineView(BaseModel):
    id: str
    metric: str
    threshold: float
    operator: str
    is_active: bool
    created_at: str | None


class ModelDetail(ModelSummary):
    hyperparameters: Record | None
    details: Record
    baselines: list[BaselineView] = Field(default_factory=list)


class PromotionResult(ModelDetail):
    online_backfill_job_id: str | None = Field(
        None, description="The online backfill job, when promoted to production"
    )


class ModelMetrics(BaseModel):
    model_id: str
    version: str
    metrics: Record | None
    threshold: float | None
    roc_curve: Any = None
    pr_curve: Any = None
    feature_importance: Record | None


class Comparison(BaseModel):
    models: list[ModelSummary]
    metrics: list[str]
    best: dict[str, str] = Field(description="metric: id of the best model")


class Transition(BaseModel):
    id: str
    model_id: str
    from_status: str
    to_status: str
    action: str
    reason: str | None
    override_baselines: bool
    actor: str | None
    created_at: str | None


class BaselineCheck(BaseModel):
    metric: str
    operator: str
    threshold: float
    value: float | None
    passed: bool


class BaselinesSet(BaseModel):
    model_id: str
    baselines: list[BaselineView]
    evaluation: list[BaselineCheck]


class RollbackResult(BaseModel):
    online_backfill_job_id: str | None
    rolled_back: ModelSummary
    production: ModelSummary


class RocCurve(BaseModel):
    fpr: list[float]
    tpr: list[float]


class PrCurve(BaseModel):
    precision: list[float]
    recall: list[float]


class ConfusionMatrix(BaseModel):
    tn: int
    fp: int
    fn: int
    tp: int


class CalibrationCurve(BaseModel):
    bin_lower: list[float]
    bin_upper: list[float]
    mean_score: list[float] = Field(description="Mean score of the bin's rows")
    fraud_rate: list[float] = Field(description="Observed fraud rate of the bin's rows")
    count: list[int]


class DayPrecision(BaseModel):
    day: str = Field(description="UTC date")
    precision: float = Field(description="Hits among the day's top k, divided by k")
    candidates: int = Field(description="Transactions (or users) scored that day")


class PrecisionAtK(BaseModel):
    k: int
    mean: float | None = Field(description="Averaged over the test days")
    per_day: list[DayPrecision]


class ModelEvaluation(BaseModel):
    model_id: str
    rows: int = Field(description="Test rows scored")
    positives: int
    threshold: float
    threshold_source: str | None = Field(
        description="validation or cost; null for models trained before it was kept"
    )
    roc_curve: RocCurve | None = Field(description="Null when one class only")
    pr_curve: PrCurve | None
    confusion_matrix: ConfusionMatrix = Field(description="At the threshold")
    calibration: CalibrationCurve
    precision_at_k: PrecisionAtK = Field(
        description="Per day, the frauds among the k highest-scored transactions"
    )
    user_precision_at_k: PrecisionAtK = Field(
        description="Per day, users ranked by their highest score: the top k's share "
        "with at least one fraud that day"
    )


class BacktestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset_id: str = Field(description="Dataset to score")
    dataset_version: str | None = Field(None, description="Default: the latest version")
    window_start: datetime | None = Field(
        None,
        description="First time scored (default: the dataset's start); UTC if naive",
    )
    window_end: datetime | None = Field(
        None, description="Scored up to, not including, this time (default: the end)"
    )


# 2 to 10 ids, commas between, spaces around them allowed
_IDS = r"^ *[^, ]+ *(, *[^, ]+ *){1,9}$"


@router.get(
    "",
    summary="List models",
    response_model=Envelope[list[ModelSummary]],
    responses=ERRORS_422,
)
def list_models(
    models: ModelCatalogDep,
    paging: Paging,
    name: str | None = Query(None, description="Only the versions of this name"),
    status: str | None = Query(
        None, description="TRAINED, STAGING, PRODUCTION, ARCHIVED"
    ),
) -> JSONResponse:
    result = models.list_models(paging.page, paging.page_size, name, status)
    return ok(result.items, pagination=result.meta)


@router.get(
    "/compare",
    summary="Compare several models side by side",
    response_model=Envelope[Comparison],
    responses=ERRORS_404_422,
)
def compare_models(
    models: ModelCatalogDep,
    ids: str = Query(pattern=_IDS, description="2 to 10 model ids, comma-separated"),
) -> JSONResponse:
    return ok(models.compare([i.strip(" ") for i in ids.split(",")]))


@router.get(
    "/{model_id}",
    summary="Model details",
    response_model=Envelope[ModelDetail],
    responses=ERRORS_404,
)
def get_model(model_id: str, models: ModelCatalogDep) -> JSONResponse:
    return ok(models.get(model_id))


@router.get(
    "/{model_id}/metrics",
    summary="Test-set metrics, curves, importance",
    response_model=Envelope[ModelMetrics],
    responses=ERRORS_404,
)
def model_metrics(model_id: str, models: ModelCatalogDep) -> JSONResponse:
    return ok(models.metrics(model_id))


@router.get(
    "/{model_id}/evaluation",
    summary="Test-period evaluation: curves, confusion matrix, precision@k per day",
    response_model=Envelope[ModelEvaluation],
    responses=ERRORS_404_409_422,
)
def model_evaluation(
    model_id: str,
    evaluations: ModelEvaluationsDep,
    k: int = Query(100, ge=1, le=100_000, description="Alerts checked a day"),
) -> JSONResponse:
    return ok(evaluations.evaluation(EvaluationQuery(model_id, k)))


@router.post(
    "/{model_id}/score",
    status_code=202,
    summary="Backtest: score a dataset's time window with this model, as a job",
    response_model=Envelope[JobAccepted],
    responses=ERRORS_404_409_422,
)
def backtest(
    model_id: str, body: BacktestRequest, backtests: BacktestsDep
) -> JSONResponse:
    return ok(
        backtests.request(
            BacktestCommand(
                model_id,
                body.dataset_id,
                body.window_start,
                body.window_end,
                body.dataset_version,
            )
        ),
        202,
    )


@router.get(
    "/{model_id}/transitions",
    summary="Every status change of this model's name",
    response_model=Envelope[list[Transition]],
    responses=ERRORS_404,
)
def model_transitions(model_id: str, models: ModelCatalogDep) -> JSONResponse:
    return ok(models.transitions(model_id))


@router.post(
    "/{model_id}/baselines",
    status_code=201,
    summary="Set the baselines that gate promotion",
    response_model=Envelope[BaselinesSet],
    responses=ERRORS_404_422,
)
def set_baselines(
    model_id: str, body: BaselinesRequest, registry: ModelRegistryDep
) -> JSONResponse:
    return ok(
        registry.set_baselines(model_id, [b.model_dump() for b in body.baselines]),
        201,
    )


@router.post(
    "/{model_id}/promote",
    summary="Promote to staging or production",
    response_model=Envelope[PromotionResult],
    responses=ERRORS_404_409_422,
)
def promote(
    model_id: str, body: PromoteRequest, registry: ModelRegistryDep
) -> JSONResponse:
    return ok(
        registry.promote(
            model_id,
            body.stage,
            body.reason,
            body.override_baselines,
            body.actor,
            online_state=body.online_state,
            override_bias=body.override_bias,
        )
    )


@router.post(
    "/{model_id}/rollback",
    summary="Restore the previous production version",
    response_model=Envelope[RollbackResult],
    responses=ERRORS_404_409_422,
)
def rollback(
    model_id: str, body: RollbackRequest, registry: ModelRegistryDep
) -> JSONResponse:
    return ok(
        registry.rollback(
            model_id, body.reason, body.actor, online_state=body.online_state
        )
    )
