"""The v1 HTTP API as one ASGI app: served by the Functions host through
``func.AsgiFunctionApp`` on Azure and by uvicorn locally, with the same routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.types import ASGIApp

from functions.api.envelope import (
    RequestIdMiddleware,
    declare_errors,
    install_error_handlers,
)
from functions.api.gateway import GatewayGuard
from functions.api.routes import (
    alerts,
    bias,
    datasets,
    features,
    health,
    jobs,
    models,
    monitoring,
    predict,
    retraining,
    training,
)
from functions.api.scoring_path import ScoringPath
from shared.config import get_settings
from shared.container import built
from shared.errors import NotFound

API_PREFIX = "/api/v1"
DOCS_ASSETS = f"{API_PREFIX}/docs/assets"

DESCRIPTION = """
Shadow Hubble: fraud-detection MLOps. Every answer uses one envelope:
`{"data": ..., "meta": {"timestamp", "request_id", "pagination"?}}`, and errors
`{"error": {"code", "message", "details": [{"field", "message"}]}, "meta": {...}}`.
"""


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    yield
    # shutdown: write out the predictions still queued in this worker
    current = built()
    if current is not None:
        current.close()


def create_app() -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="Shadow Hubble API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by _add_docs from local assets, not a CDN
        redoc_url=None,
    )
    v1 = APIRouter(prefix=API_PREFIX)
    # scoring first: routes are matched in order (a /predict that the scoring path
    # hands on, SH_SCORING_PATH=false, is matched before the others are tried)
    v1.include_router(predict.router)
    v1.include_router(health.router)
    v1.include_router(datasets.router)
    v1.include_router(features.router)
    v1.include_router(jobs.router)
    v1.include_router(training.router)
    v1.include_router(models.router)
    v1.include_router(monitoring.router)
    v1.include_router(alerts.router)
    v1.include_router(bias.router)
    v1.include_router(retraining.router)
    app.include_router(v1)
    install_error_handlers(app)
    _add_docs(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return declare_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _assets() -> dict[str, tuple[Path, str]]:
    """Swagger UI and ReDoc as the ``fastapi-offline`` package ships them."""
    folder = Path(str(files("fastapi_offline") / "static"))
    return {
        "swagger-ui-bundle.js": (folder / "swagger-ui-bundle.js", "text/javascript"),
        "swagger-ui.css": (folder / "swagger-ui.css", "text/css"),
        "redoc.standalone.js": (folder / "redoc.standalone.js", "text/javascript"),
        "favicon.png": (folder / "favicon.png", "image/png"),
    }


def _add_docs(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with their scripts served by the app itself:
    FastAPI's defaults load them from a CDN, and show a blank page offline."""
    assets = _assets()
    openapi_url = str(app.openapi_url)

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            oauth2_redirect_url=None,
        )

    @app.get(f"{API_PREFIX}/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @app.get(f"{DOCS_ASSETS}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        if name not in assets:
            raise NotFound(f"No documentation asset {name!r}.")
        path, media_type = assets[name]
        return FileResponse(path, media_type=media_type)


def create_asgi_app(
    app: FastAPI | None = None,
    gateway_secret: str | None = None,
    scoring_path: bool | None = None,
) -> RequestIdMiddleware:
    """The app as served: the request-id layer sits outermost so that even the log of an
    unhandled error carries the id the client got back; inside it, with a
    ``gateway_secret`` (default: the setting), requests that did not come through API
    Management are refused (``GatewayGuard``); then /predict is answered ahead of the
    framework (``ScoringPath``, unless ``scoring_path`` or its setting says not to)."""
    settings = get_settings()
    answer_predict = settings.scoring_path if scoring_path is None else scoring_path
    inner: ASGIApp = ScoringPath(app or create_app(), API_PREFIX, answer_predict)
    if gateway_secret is None:
        secret = settings.gateway_secret
        gateway_secret = secret.get_secret_value() if secret is not None else None
    if gateway_secret:
        open_paths = frozenset({f"{API_PREFIX}/openapi.json"})
        inner = GatewayGuard(inner, gateway_secret, open_paths)
    return RequestIdMiddleware(inner)
