"""POST /api/v1/predict answered without the framework's per-request machinery.

FastAPI's middleware stack, routing, dependency solving and body parsing are a large
share of a /predict's CPU (SH_SCORING_PATH, ``bench/bench_predict.py``). This ASGI
layer answers that one route itself: the same request model (``PredictRequest``) read
as FastAPI reads it, the same service call (``predict_answer``) and the same envelope,
errors included (``error_answer``). Everything else, and a /predict that is not
declared JSON, goes to the app, where the FastAPI route documents the endpoint and
serves it when this layer is off. Every answer is the route's, errors too: the body's
size limit (413), a body that is not JSON text (400 or 422), and any failure.
"""

from __future__ import annotations

import json

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.api.envelope import error_answer
from functions.api.routes.predict import (
    BODY_LIMITS,
    PREDICT_PATH,
    PredictRequest,
    predict_answer,
    too_large,
)
from shared.container import container


class ScoringPath:
    """ASGI layer in front of the app; see the module docstring. It also refuses, in
    the envelope, a body to any inference route whose declared Content-Length is over
    that route's limit (``BODY_LIMITS``), which the framework would refuse in plain
    text. ``answer_predict`` False (``SH_SCORING_PATH``): /predict goes to the app."""

    def __init__(self, app: ASGIApp, path: str, answer_predict: bool = True) -> None:
        self.app = app
        self.path = path + PREDICT_PATH if answer_predict else None
        self.limits = {path + route: limit for route, limit in BODY_LIMITS.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        limit = self.limits.get(path)
        if limit is None:
            await self.app(scope, receive, send)
            return
        is_json, length = _headers(scope)
        if length is not None and length > limit:
            await error_answer(too_large(limit))(scope, receive, send)
            return
        if path != self.path or not is_json:  # the route answers, 415 included
            await self.app(scope, receive, send)
            return
        response: Response
        try:
            body = await _read_body(receive, limit)
            if body is None:  # the client went away
                return
            response = predict_answer(_parse(body), container().predictor)
        except Exception as exc:  # the envelope, as the app's handlers give it
            response = error_answer(exc)
        await response(scope, receive, send)


def _parse(body: bytes) -> PredictRequest:
    """The body as FastAPI reads one: ``json.loads`` (NaN accepted, so that the model
    names the field that may not be NaN; a syntax error is a 422, a body it cannot
    decode at all a 400), then the model in Python mode, whose error messages differ
    from its JSON mode's."""
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required"}]
        )
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": "JSON decode error",
                    "ctx": {"error": exc.msg},
                }
            ]
        ) from None
    except Exception:  # not UTF-8/16/32, digits past int's limit, nested too deep
        raise HTTPException(400, "There was an error parsing the body") from None
    try:
        return PredictRequest.model_validate(payload, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        ) from None


def route_path(scope: Scope) -> str:
    """The path the app's router matches: behind a ``root_path`` (a proxy's prefix),
    Starlette strips it first, and so does this."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _headers(scope: Scope) -> tuple[bool, int | None]:
    """(declared application/json, Content-Length if given and a number)."""
    is_json, length = False, None
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            is_json = media == b"application/json"
        elif name == b"content-length" and value.isdigit():
            length = int(value)
    return is_json, length


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The body, or None if the client went away; PayloadTooLarge past ``limit``
    bytes, as soon as they have arrived."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
