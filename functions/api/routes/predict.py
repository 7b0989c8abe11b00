"""HTTP routes of spec section 5 (inference) and the labels that come back later.

Thin on purpose: validate, call the ``Predictor``, wrap in the envelope. Answers are
serialised with orjson (a batch answer holds 10,000 predictions).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, Self

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema
from typing_extensions import TypedDict

from functions.api.deps import PredictorDep
from functions.api.envelope import Envelope, errors, ok_json
from functions.api.schemas import BatchPrediction, LabelsRecorded, Prediction
from shared.errors import (
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)
from shared.services.predictions import DEFAULT_TOP_K, MAX_BATCH

if TYPE_CHECKING:
    from shared.services.predictions import Predictor

router = APIRouter(tags=["inference"])

Id = Annotated[str, Field(min_length=1, max_length=255)]
Name = Annotated[str, Field(max_length=100)]

# The features' own bounds (ml.features.config), repeated rather than imported: the
# app's cold start does not load numpy. tests/api/test_predict_input.py checks they agree.
MAX_AMOUNT = 1e12
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive

# Request bodies: one transaction is well under 2 KiB even with every id at its longest;
# a batch of MAX_BATCH such transactions fits in 32 MiB, and MAX_BATCH labels in 8.
PREDICT_MAX_BYTES = 64 * 1024
BATCH_MAX_BYTES = 32 * 1024 * 1024
LABELS_MAX_BYTES = 8 * 1024 * 1024


_YEARS_IN_RANGE = r"^(19[7-9][0-9]|2[01][0-9][0-9])-"


class _DateTimeString:
    """A datetime given as an ISO-8601 date-time string (pydantic alone also takes a
    number, a numeric string, a date alone) from MIN_TIMESTAMP up to MAX_TIMESTAMP, a
    naive one taken as UTC: all checked in pydantic-core (the same checks in Python
    took /predict several microseconds)."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, _: Any, __: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.custom_error_schema(
                    core_schema.str_schema(
                        pattern=r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}"
                    ),
                    custom_error_type="datetime_string",
                    custom_error_message="Input should be an ISO-8601 date-time "
                    "string, e.g. 2026-01-17T15:00:00Z",
                ),
                core_schema.datetime_schema(ge=MIN_TIMESTAMP, lt=MAX_TIMESTAMP),
            ]
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _: core_schema.CoreSchema, __: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # the years in range (the exact instants are in the field's description)
        return {"type": "string", "format": "date-time", "pattern": _YEARS_IN_RANGE}


class TransactionIn(TypedDict):
    """A transaction at checkout. Unknown fields are ignored; so is ``is_fraud``: the
    outcome is not known when scoring, it arrives through /predictions/labels.

    A TypedDict, not a model: pydantic-core validates it straight into the dict that
    scoring takes (a batch of 10,000 is not built as models and dumped again)."""

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
    amount: Annotated[
        float,
        Field(
            ge=0,
            le=MAX_AMOUNT,
            allow_inf_nan=False,
            strict=True,
            description=f"In the currency's units, 0 to {MAX_AMOUNT:.0e}",
        ),
    ]
    timestamp: Annotated[
        datetime,
        _DateTimeString,
        Field(
            description="ISO-8601 date-time string; without a zone taken as UTC. "
            "From 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z"
        ),
    ]
    user_id: Id
    merchant_id: NotRequired[Id | None]
    merchant_category: NotRequired[Name | None]
    device_id: NotRequired[Id | None]
    device_type: NotRequired[Name | None]
    location: NotRequired[Annotated[Name | None, Field(description="Country code")]]
    payment_method: NotRequired[Name | None]


ProtectedValue = Annotated[str, Field(max_length=200)] | int | float | bool | None
ProtectedAttributes = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=100)], ProtectedValue],
    Field(
        max_length=20,
        description="Protected attributes of the transaction's customer, by data "
        "column (e.g. gender, age_group): logged with the prediction for bias "
        "audits; never used as features, never returned",
        examples=[{"gender": "female", "age_group": "26-45"}],
    ),
]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str | None = Field(
        None, description="Defaults to the current production model"
    )
    transaction: TransactionIn
    protected_attributes: ProtectedAttributes | None = None


class ExplainRequest(PredictRequest):
    top_k: int = Field(DEFAULT_TOP_K, ge=1, le=100, description="Features to return")


class BatchTransactionIn(TransactionIn):
    """A batch item: a transaction and, optionally, its protected attributes."""

    protected_attributes: NotRequired[ProtectedAttributes | None]


class _AsTransactions:
    """Documents a list as ``TransactionIn`` items while it is validated as ``Any``:
    the route validates the items itself, all at once, to name each bad index."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, _: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(TypeAdapter(list[BatchTransactionIn]).core_schema)


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str | None = Field(
        None, description="Defaults to the current production model"
    )
    transactions: Annotated[list[Any], _AsTransactions] = Field(
        description=f"1 to {MAX_BATCH:,} transactions, scored in order; one invalid "
        "item refuses the whole batch (422 naming each index); more than "
        f"{MAX_BATCH:,}: 413",
        json_schema_extra={"minItems": 1, "maxItems": MAX_BATCH},
    )


_ONE_ID = "give exactly one of prediction_id and transaction_id"


def _not_null(schema: dict[str, Any]) -> None:
    """A field's ``anyOf: [X, null]``, default None, documented as X: absent is how
    the other id is left out."""
    options = [o for o in schema.pop("anyOf", []) if o.get("type") != "null"]
    if options:
        schema.update(options[0])
    schema.pop("default", None)


class LabelIn(BaseModel):
    """An outcome, by ``prediction_id`` or by ``transaction_id``: exactly one of them."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["prediction_id"]}, {"required": ["transaction_id"]}]
        },
    )
    # typed without null in the document: a null id is refused as a missing one would be
    prediction_id: Annotated[uuid.UUID | None, Field(json_schema_extra=_not_null)] = (
        None
    )
    transaction_id: Annotated[Id | None, Field(json_schema_extra=_not_null)] = None
    label: bool = Field(strict=True, description="The actual outcome: true = fraud")

    @model_validator(mode="after")
    def _exactly_one_id(self) -> Self:
        given = self.model_fields_set & {"prediction_id", "transaction_id"}
        if len(given) != 1 or None in (getattr(self, name) for name in given):
            raise ValueError(_ONE_ID)
        return self


class LabelsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[LabelIn] = Field(min_length=1, max_length=MAX_BATCH)


_TRANSACTIONS = TypeAdapter(list[BatchTransactionIn])


def _transaction(txn: TransactionIn) -> dict[str, Any]:
    """What scoring reads: the transaction's fields, never its protected attributes."""
    return {
        k: v for k, v in txn.items() if v is not None and k != "protected_attributes"
    }


PREDICT_PATH = "/predict"


def declares_json(content_type: str | None) -> bool:
    """Whether a Content-Type is one FastAPI parses as JSON: application/json or
    application/*+json, parameters aside."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def json_body(request: Request) -> None:
    """415 for a body not declared JSON. FastAPI would hand it on as bytes, which fail
    validation as "not an object" (422), or answer a form with the form's errors."""
    content_type = request.headers.get("content-type")
    if not declares_json(content_type):
        raise UnsupportedMediaType(
            "Send the body as JSON, with Content-Type: application/json.",
            field_error("content-type", f"got {content_type or 'none'}"),
        )


EXPLAIN_PATH = "/predict/explain"
BATCH_PATH = "/predict/batch"
LABELS_PATH = "/predictions/labels"
# Each route's body limit. The framework's (``max_body_size``) answers in plain text
# when the Content-Length is already too large, so ``functions.api.scoring_path``
# refuses those bodies first, in the envelope; the framework's counts streamed ones.
BODY_LIMITS = {
    PREDICT_PATH: PREDICT_MAX_BYTES,
    EXPLAIN_PATH: PREDICT_MAX_BYTES,
    BATCH_PATH: BATCH_MAX_BYTES,
    LABELS_PATH: LABELS_MAX_BYTES,
}


def too_large(limit: int) -> PayloadTooLarge:
    size = (
        f"{limit // (1024 * 1024)} MiB"
        if limit >= 1024 * 1024
        else f"{limit // 1024} KiB"
    )
    return PayloadTooLarge(
        f"The body is larger than {size}, the most this endpoint takes.",
        field_error("body", f"at most {limit} bytes"),
    )


_JSON_ONLY = [Depends(json_body)]
_SCORING_ERRORS = {
    **errors(400, 404, 409, 413, 415, 422, 503),
    404: {**errors(404)[404], "description": "No model with that model_id"},
    409: {
        **errors(409)[409],
        "description": "No model in production (and no model_id)",
    },
}


def predict_answer(body: PredictRequest, predictor: Predictor) -> Response:
    """/predict's answer, from this route or from ``functions.api.scoring_path``, which
    serves it ahead of the framework."""
    return ok_json(
        predictor.predict(
            _transaction(body.transaction),
            body.model_id,
            protected=body.protected_attributes,
        )
    )


@router.post(
    PREDICT_PATH,
    summary="Score one transaction",
    response_model=Envelope[Prediction],
    dependencies=_JSON_ONLY,
    max_body_size=PREDICT_MAX_BYTES,
    responses=_SCORING_ERRORS,
)
async def predict(body: PredictRequest, predictor: PredictorDep) -> Response:
    # On the event loop, not the thread pool: scoring is short CPU and short database
    # calls, cheaper than the pool's hand-off. Explain and batch, longer, use the pool.
    return predict_answer(body, predictor)


@router.post(
    EXPLAIN_PATH,
    summary="Score one transaction and explain the score",
    response_model=Envelope[Prediction],
    dependencies=_JSON_ONLY,
    max_body_size=PREDICT_MAX_BYTES,
    responses=_SCORING_ERRORS,
)
def predict_explain(body: ExplainRequest, predictor: PredictorDep) -> Response:
    return ok_json(
        predictor.predict(
            _transaction(body.transaction),
            body.model_id,
            explain=True,
            top_k=body.top_k,
            protected=body.protected_attributes,
        )
    )


@router.post(
    BATCH_PATH,
    summary="Score up to 10,000 transactions in order",
    response_model=Envelope[BatchPrediction],
    dependencies=_JSON_ONLY,
    max_body_size=BATCH_MAX_BYTES,
    responses={
        **_SCORING_ERRORS,
        413: {
            **errors(413)[413],
            "description": f"More than {MAX_BATCH:,} transactions, or a body over "
            f"{BATCH_MAX_BYTES // (1024 * 1024)} MiB",
        },
    },
)
def predict_batch(body: BatchRequest, predictor: PredictorDep) -> Response:
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
        predictor.predict_batch(
            [_transaction(t) for t in items],
            body.model_id,
            [t.get("protected_attributes") for t in items],
        )
    )


@router.post(
    LABELS_PATH,
    summary="Record actual outcomes of scored transactions",
    response_model=Envelope[LabelsRecorded],
    description="By prediction_id or transaction_id, exactly one per label. Fills "
    "predictions.actual_label for performance monitoring and feeds the merchant and "
    "user fraud-rate features of every feature configuration that scored the "
    "transaction (a prediction id labels its transaction), whichever worker serves "
    "them; they use a label once the feature set's label delay has passed. "
    "online_state_updated counts the (transaction, configuration) pairs labelled.",
    dependencies=_JSON_ONLY,
    max_body_size=LABELS_MAX_BYTES,
    responses=errors(400, 413, 415, 422, 503),
)
def label_predictions(body: LabelsRequest, predictor: PredictorDep) -> Response:
    items = [label.model_dump(mode="json", exclude_none=True) for label in body.labels]
    return ok_json(predictor.label(items))
