"""HTTP routes of spec section 5 (inference) and the labels that come back later.

Thin on purpose: validate, call ``ctx.predictor``, wrap in the envelope. Answers are
serialised with orjson (a batch answer holds 10,000 predictions).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NotRequired

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from functions.api.deps import Ctx
from functions.api.envelope import ok_json
from shared.bootstrap import AppContext
from shared.errors import PayloadTooLarge, ValidationFailed
from shared.services.predictions import DEFAULT_TOP_K, MAX_BATCH

router = APIRouter(tags=["inference"])

Id = Annotated[str, Field(min_length=1, max_length=255)]
Name = Annotated[str, Field(max_length=100)]


class TransactionIn(TypedDict):
    """A transaction at checkout. Unknown fields are ignored; so is ``is_fraud``: the
    outcome is not known when scoring, it arrives through /predictions/labels.

    A TypedDict, not a model: pydantic-core validates it straight into the dict that
    scoring takes (a batch of 10,000 in 6 ms, against 29 ms as models then dumped)."""

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        extra="ignore",
        json_schema_extra={
            "example": {
                "transaction_id": "TXN123",
                "amount": 5000.0,
                "merchant_id": "M456",
                "merchant_category": "electronics",
                "user_id": "U789",
                "timestamp": "2026-01-17T15:00:00Z",
                "device_id": "D42",
                "device_type": "mobile",
                "location": "IN",
                "payment_method": "card",
            }
        },
    )
    transaction_id: Annotated[
        Id, Field(description="Unique per transaction; a retry reuses it")
    ]
    amount: Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
    timestamp: Annotated[
        datetime, Field(description="ISO-8601; without a zone taken as UTC")
    ]
    user_id: Id
    merchant_id: NotRequired[Id | None]
    merchant_category: NotRequired[Name | None]
    device_id: NotRequired[Id | None]
    device_type: NotRequired[Name | None]
    location: NotRequired[Annotated[Name | None, Field(description="Country code")]]
    payment_method: NotRequired[Name | None]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str | None = Field(
        None, description="Defaults to the current production model"
    )
    transaction: TransactionIn


class ExplainRequest(PredictRequest):
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=100, description="Features to return")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str | None = Field(
        None, description="Defaults to the current production model"
    )
    transactions: list[Any] = Field(
        description=f"Up to {MAX_BATCH:,} transactions (TransactionIn), scored in "
        "order; one invalid item refuses the whole batch (422 naming each index)"
    )


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prediction_id: str | None = None
    transaction_id: str | None = None
    label: bool = Field(description="The actual outcome: true = fraud")


class LabelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_BATCH)


_TRANSACTIONS = TypeAdapter(list[TransactionIn])


def _transaction(txn: TransactionIn) -> dict[str, Any]:
    return {k: v for k, v in txn.items() if v is not None}


PREDICT_PATH = "/predict"


def predict_answer(body: PredictRequest, ctx: AppContext) -> Response:
    """/predict's answer, from this route or from ``functions.api.scoring_path``, which
    serves it ahead of the framework."""
    return ok_json(ctx.predictor.predict(_transaction(body.transaction), body.model_id))


@router.post(PREDICT_PATH, summary="Score one transaction")
async def predict(body: PredictRequest, ctx: Ctx) -> Response:
    # Runs on the event loop, not in the thread pool: scoring is about a millisecond of
    # CPU with short database calls, and the pool's hand-off cost more than it saved
    # (bench/bench_predict.py). Explain and batch, which can take longer, use the pool.
    return predict_answer(body, ctx)


@router.post("/predict/explain", summary="Score one transaction and explain the score")
def predict_explain(body: ExplainRequest, ctx: Ctx) -> Response:
    return ok_json(
        ctx.predictor.predict(
            _transaction(body.transaction),
            body.model_id,
            explain=True,
            top_k=body.top_k,
        )
    )


@router.post("/predict/batch", summary="Score up to 10,000 transactions in order")
def predict_batch(body: BatchRequest, ctx: Ctx) -> Response:
    if len(body.transactions) > MAX_BATCH:
        raise PayloadTooLarge(
            f"A batch holds at most {MAX_BATCH:,} transactions; this one has "
            f"{len(body.transactions):,}. Split it.",
            [{"field": "transactions", "message": f"at most {MAX_BATCH} items"}],
        )
    if not body.transactions:
        raise ValidationFailed(
            "The batch is empty.",
            [{"field": "transactions", "message": "at least 1 item"}],
        )
    try:
        items = _TRANSACTIONS.validate_python(body.transactions)
    except ValidationError as exc:
        details = [
            {
                "field": ".".join(str(p) for p in ("transactions", *e["loc"])),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        bad = sorted({int(e["loc"][0]) for e in exc.errors() if e["loc"]})
        raise ValidationFailed(
            f"{len(bad)} of {len(body.transactions)} transactions are invalid "
            f"(indexes {', '.join(map(str, bad[:20]))}{'...' if len(bad) > 20 else ''}); "
            "nothing was scored.",
            details,
        ) from None
    return ok_json(
        ctx.predictor.predict_batch([_transaction(t) for t in items], body.model_id)
    )


@router.post(
    "/predictions/labels",
    summary="Record actual outcomes of scored transactions",
    description="By prediction_id or transaction_id. Fills predictions.actual_label "
    "for performance monitoring and feeds the merchant fraud-rate features, which "
    "use a label once the feature set's label delay has passed.",
)
def label_predictions(body: LabelsRequest, ctx: Ctx) -> Response:
    items = [label.model_dump(exclude_none=True) for label in body.labels]
    return ok_json(ctx.predictor.label(items))
