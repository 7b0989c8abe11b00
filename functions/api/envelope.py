"""The spec's response envelope for every answer, errors included, and the request id.

The envelope is also a pair of pydantic models, ``Envelope[T]`` and ``ErrorEnvelope``,
so that the OpenAPI document shows each answer's shape and every error it can give
(``ERRORS_*``, and ``declare_errors`` for what every route shares)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import AppError
from shared.logging_setup import request_id_var
from shared.ports import StorageError
from shared.services.pagination import Page

log = logging.getLogger("shadow_hubble.http")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


T = TypeVar("T")


class Pagination(BaseModel):
    page: int = Field(ge=1)
    page_size: int = Field(ge=1)
    total: int = Field(ge=0)
    total_pages: int = Field(ge=0)


class Meta(BaseModel):
    timestamp: str = Field(description="When the answer was made (ISO-8601, UTC)")
    request_id: str = Field(description="X-Request-ID, or one made for this request")
    pagination: Pagination | None = Field(None, description="On list answers")


class Envelope(BaseModel, Generic[T]):
    """Every successful answer: ``{"data": ..., "meta": {...}}``."""

    data: T
    meta: Meta


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable: NOT_FOUND, CONFLICT, ...")
    message: str
    details: list[ErrorDetail]


class ErrorEnvelope(BaseModel):
    """Every error: ``{"error": {"code", "message", "details"}, "meta": {...}}``."""

    error: ErrorBody
    meta: Meta


_ERROR_DESCRIPTIONS = {
    400: "The body could not be read",
    403: "Not called through the gateway",
    404: "No such resource",
    405: "Method not allowed (the Allow header lists those that are)",
    409: "Conflicts with the resource's current state",
    413: "The body is too large",
    415: "The body's media type is not accepted",
    422: "The request is not valid; details name each field",
    500: "Unexpected error; quote meta.request_id",
    503: "Storage or database unavailable; nothing was changed",
}

Responses = dict[int | str, dict[str, Any]]


def errors(*codes: int) -> Responses:
    """OpenAPI ``responses`` for these error statuses, each in the error envelope."""
    return {
        code: {"model": ErrorEnvelope, "description": _ERROR_DESCRIPTIONS[code]}
        for code in codes
    }


ERRORS_404 = errors(404)
ERRORS_404_409 = errors(404, 409)
ERRORS_404_422 = errors(404, 422)
ERRORS_404_409_422 = errors(404, 409, 422)
ERRORS_422 = errors(422)


def meta(**extra: Any) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "request_id": request_id_var.get() or str(uuid.uuid4()),
        **extra,
    }


def ok(
    data: Any, status_code: int = 200, pagination: dict[str, int] | None = None
) -> JSONResponse:
    extra = {"pagination": pagination} if pagination is not None else {}
    return JSONResponse(
        {"data": jsonable_encoder(data), "meta": meta(**extra)}, status_code=status_code
    )


def ok_page(page: Page[Any]) -> JSONResponse:
    """A list endpoint's answer: the page's items, its numbers in ``meta``."""
    return ok(page.items, pagination=page.meta)


def ok_json(data: Any, status_code: int = 200) -> Response:
    """``ok`` for large or hot answers of plain JSON types: serialised by orjson
    directly (no jsonable_encoder pass; NaN becomes null)."""
    import orjson

    body = orjson.dumps(
        {"data": data, "meta": meta()}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    return Response(body, status_code=status_code, media_type="application/json")


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {"code": code, "message": message, "details": details or []},
        "meta": meta(),
    }
    return JSONResponse(
        jsonable_encoder(body), status_code=status_code, headers=headers
    )


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or str(loc[-1] if loc else "request")


def _app_error(exc: AppError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details)


def _validation_error(exc: RequestValidationError) -> JSONResponse:
    details = [_validation_detail(e) for e in exc.errors()]
    return error_response(422, "VALIDATION_ERROR", "The request is not valid.", details)


def _validation_detail(error: dict[str, Any]) -> dict[str, str]:
    if error.get("type") == "json_invalid":
        # FastAPI locates a JSON syntax error at ("body", character); pydantic at ()
        reason = (error.get("ctx") or {}).get("error")
        message = error.get("msg", "JSON decode error")
        return {
            "field": "body",
            "message": f"{message}: {reason}" if reason else message,
        }
    return {
        "field": _loc_to_field(tuple(error.get("loc", ()))),
        "message": error.get("msg", "invalid"),
    }


def _http_error(exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = "No such endpoint. See /api/v1/docs for the API."
    if exc.status_code == 405:
        message = "This endpoint does not accept that HTTP method."
    return error_response(exc.status_code, code, message, headers=exc.headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: ASGIApp, scope: Scope) -> list[str]:
    """Every method some route of ``app`` answers at this request's path.

    Starlette's 405 names only the methods of the first route that matched the path,
    and each method of a path is its own route here (GET and DELETE /datasets/{id})."""
    routes = getattr(app, "routes", [])
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**scope, "method": method})[0] == Match.FULL
            for route in routes
        )
    ]
    return [*allowed, "OPTIONS"] if allowed else []


def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> Response:
    allow = ", ".join(allowed_methods(request.app, request.scope))
    headers = {**(exc.headers or {}), "Allow": allow} if allow else exc.headers
    if request.method == "OPTIONS" and allow:
        # what OPTIONS asks: the methods this resource supports (RFC 9110, 9.3.7)
        return Response(status_code=204, headers=headers)
    return _http_error(StarletteHTTPException(405, str(exc.detail), headers))


def _storage_error(exc: StorageError) -> JSONResponse:
    log.error("storage error: %s", exc)
    return error_response(
        503,
        "STORAGE_UNAVAILABLE",
        "Blob storage failed; nothing was changed. Try again.",
    )


def _unhandled(exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(
        500,
        "INTERNAL_ERROR",
        "Something went wrong on our side. Quote the request_id when reporting it.",
    )


# most specific first: the first whose type matches answers
_ERROR_ANSWERS: list[tuple[type[Exception], Callable[[Any], JSONResponse]]] = [
    (AppError, _app_error),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
    (StorageError, _storage_error),
    (Exception, _unhandled),
]


def error_answer(exc: Exception) -> JSONResponse:
    """The envelope for an exception, as the app's handlers give it (also used where a
    request is answered outside FastAPI, see ``functions.api.scoring_path``)."""
    for kind, answer in _ERROR_ANSWERS:
        if isinstance(exc, kind):
            return answer(exc)
    raise AssertionError("Exception matches every exception")  # pragma: no cover


async def _handle(request: Request, exc: Exception) -> Response:
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 405:
        return _method_not_allowed(request, exc)
    return error_answer(exc)


def install_error_handlers(app: FastAPI) -> None:
    for kind, _answer in _ERROR_ANSWERS:
        app.add_exception_handler(kind, _handle)


_COMPONENT = "#/components/schemas/{model}"
_ERROR_REF = _COMPONENT.format(model="ErrorEnvelope")
_BODY_METHODS = frozenset({"post", "put", "patch", "delete"})


def _error_schemas() -> dict[str, Any]:
    schema = ErrorEnvelope.model_json_schema(
        ref_template=_COMPONENT, mode="serialization"
    )
    return {**schema.pop("$defs", {}), "ErrorEnvelope": schema}


def _declared_errors(method: str, operation: Mapping[str, Any]) -> Iterable[int]:
    """What any operation of this shape can answer, whatever its route does."""
    parameters = operation.get("parameters") or []
    if any(p.get("in") == "path" for p in parameters):
        yield 404
    if method in _BODY_METHODS:
        yield 409  # a state-changing call meets the resource in a state it refuses
    if "requestBody" in operation:
        yield from (400, 413, 415)
    if parameters or "requestBody" in operation:
        yield 422
    yield from (500, 503)


def declare_errors(document: dict[str, Any]) -> dict[str, Any]:
    """Make an OpenAPI document (FastAPI's, in place) say which errors each operation
    can give, each in the error envelope: the route's own ``responses`` first, then what
    every operation of its shape can answer (``_declared_errors``). FastAPI's default
    422 schema, which is not the envelope, is replaced. Idempotent."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components.update(_error_schemas())
    for methods in document.get("paths", {}).values():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            for status in _declared_errors(method, operation):
                answer = responses.get(str(status))
                if answer is None or _is_fastapi_422(answer):
                    responses[str(status)] = {
                        "description": _ERROR_DESCRIPTIONS[status],
                        "content": {
                            "application/json": {"schema": {"$ref": _ERROR_REF}}
                        },
                    }
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f'/{unused}"' not in json.dumps(document):
            del components[unused]
    return document


def _is_fastapi_422(answer: Mapping[str, Any]) -> bool:
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


class RequestIdMiddleware:
    """Pure ASGI middleware (no body buffering, so streamed uploads stay streamed):
    takes X-Request-ID or makes one, exposes it to logs, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode()
        request_id = incoming[:100] if incoming else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "%s %s -> %s",
                scope.get("method"),
                scope.get("path"),
                status,
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
            request_id_var.reset(token)
