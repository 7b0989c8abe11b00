"""POST /api/v1/predict answered without the framework's per-request machinery.

The checkout path has 2 ms at p50. FastAPI's middleware stack, routing, dependency
solving and body parsing took about a third of a /predict's time on the event loop
(py-spy, ``bench/bench_predict.py``). This ASGI layer answers that one route itself:
the same request model (``PredictRequest``) read as FastAPI reads it,
the same service call (``predict_answer``) and the same envelope, errors included
(``error_answer``). Everything else, and a /predict that is not declared JSON, goes to
the app, where the FastAPI route documents the endpoint and serves it when this layer
is absent.
"""

from __future__ import annotations

import json

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.api.envelope import error_answer
from functions.api.routes.predict import PREDICT_PATH, PredictRequest, predict_answer
from shared.bootstrap import get_context


class ScoringPath:
    """ASGI layer in front of the app; see the module docstring."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path + PREDICT_PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or route_path(scope) != self.path
            or scope["method"] != "POST"
            or not _declares_json(scope)
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        response: Response
        try:
            request = _parse(body)
        except RequestValidationError as exc:
            response = error_answer(exc)
        else:
            try:
                response = predict_answer(request, get_context())
            except Exception as exc:  # the envelope, as the app's handlers give it
                response = error_answer(exc)
        await response(scope, receive, send)


def _parse(body: bytes) -> PredictRequest:
    """The body as FastAPI reads one: ``json.loads`` (NaN accepted, so that the model
    names the field that may not be NaN), then the model in Python mode, whose error
    messages differ from its JSON mode's."""
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


def _declares_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json"
    return False


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
