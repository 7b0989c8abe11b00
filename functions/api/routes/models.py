"""HTTP routes of spec section 4 (model registry)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from functions.api.deps import Ctx, PageQ, PageSizeQ
from functions.api.envelope import ok

if TYPE_CHECKING:
    from shared.services.models import ModelRegistry

router = APIRouter(prefix="/models", tags=["models"])


class BaselineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str = Field(description="precision, recall, f1_score, auc_roc, auc_pr, fpr")
    threshold: float
    operator: str = Field(description="gte, lte or eq")


class BaselinesRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    baselines: list[BaselineIn]


# the values as shared.services.models takes them (kept light here)
OnlineState = Annotated[
    Literal["keep", "replace"],
    Field(
        description="keep: when the online feature state of the model's feature "
        "configuration is live (transactions scored since its last backfill), the "
        "model continues from it; replace: rebuild it from the model's training data, "
        "forgetting what was scored live",
    ),
]


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: Literal["staging", "production"]
    reason: str | None = Field(None, max_length=2000)
    override_baselines: bool = False
    actor: str | None = Field(None, max_length=255, description="Who asks (until SSO)")
    online_state: OnlineState = "keep"


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=2000)
    actor: str | None = Field(None, max_length=255)
    online_state: OnlineState = "keep"


def _registry(ctx: Ctx) -> ModelRegistry:
    from shared.services.models import ModelRegistry

    return ModelRegistry(ctx)


@router.get("", summary="List models")
def list_models(
    ctx: Ctx,
    page: PageQ = 1,
    page_size: PageSizeQ = 20,
    name: str | None = Query(None),
    status: str | None = Query(
        None, description="TRAINED, STAGING, PRODUCTION, ARCHIVED"
    ),
) -> JSONResponse:
    result = _registry(ctx).list_models(page, page_size, name, status)
    return ok(result.items, pagination=result.meta)


@router.get("/compare", summary="Compare several models side by side")
def compare_models(
    ctx: Ctx, ids: str = Query(description="Comma-separated model ids")
) -> JSONResponse:
    return ok(_registry(ctx).compare([i.strip() for i in ids.split(",") if i.strip()]))


@router.get("/{model_id}", summary="Model details")
def get_model(model_id: str, ctx: Ctx) -> JSONResponse:
    return ok(_registry(ctx).get(model_id))


@router.get("/{model_id}/metrics", summary="Test-set metrics, curves, importance")
def model_metrics(model_id: str, ctx: Ctx) -> JSONResponse:
    return ok(_registry(ctx).metrics(model_id))


@router.get(
    "/{model_id}/transitions", summary="Every status change of this model's name"
)
def model_transitions(model_id: str, ctx: Ctx) -> JSONResponse:
    return ok(_registry(ctx).transitions(model_id))


@router.post("/{model_id}/baselines", summary="Set the baselines that gate promotion")
def set_baselines(model_id: str, body: BaselinesRequest, ctx: Ctx) -> JSONResponse:
    return ok(
        _registry(ctx).set_baselines(
            model_id, [b.model_dump() for b in body.baselines]
        ),
        201,
    )


@router.post("/{model_id}/promote", summary="Promote to staging or production")
def promote(model_id: str, body: PromoteRequest, ctx: Ctx) -> JSONResponse:
    return ok(
        _registry(ctx).promote(
            model_id,
            body.stage,
            body.reason,
            body.override_baselines,
            body.actor,
            online_state=body.online_state,
        )
    )


@router.post("/{model_id}/rollback", summary="Restore the previous production version")
def rollback(model_id: str, body: RollbackRequest, ctx: Ctx) -> JSONResponse:
    return ok(
        _registry(ctx).rollback(
            model_id, body.reason, body.actor, online_state=body.online_state
        )
    )
