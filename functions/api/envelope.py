"""The spec's response envelope for every answer, errors included, and the request id."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import AppError
from shared.logging_setup import request_id_var
from shared.storage.base import StorageError

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


async def _handle(_: Request, exc: Exception) -> JSONResponse:
    return error_answer(exc)


def install_error_handlers(app: FastAPI) -> None:
    for kind, _answer in _ERROR_ANSWERS:
        app.add_exception_handler(kind, _handle)


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
