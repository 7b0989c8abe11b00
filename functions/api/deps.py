"""Typed dependencies shared by the routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query

from shared.bootstrap import AppContext, get_context
from shared.config import get_settings
from shared.services.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    PageRequest,
)


async def context() -> AppContext:
    # async: a sync dependency would cost every request a thread-pool round trip
    return get_context()


Ctx = Annotated[AppContext, Depends(context)]
PageQ = Annotated[
    int, Query(ge=1, le=MAX_PAGE, description=f"1-based page number, to {MAX_PAGE:,}")
]
PageSizeQ = Annotated[
    int,
    Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}"),
]


async def page_request(
    page: PageQ = 1, page_size: PageSizeQ = DEFAULT_PAGE_SIZE
) -> PageRequest:
    """``?page=&page_size=`` of every list endpoint, bounded in the OpenAPI document
    (out of bounds: 422 before the route runs)."""
    return PageRequest(page, page_size)


Paging = Annotated[PageRequest, Depends(page_request)]

# ?rows= of the previews: the upper bound is the setting the app starts with
PreviewRowsQ = Annotated[
    int,
    Query(
        ge=1,
        le=get_settings().preview_max_rows,
        description="How many rows, 1 to SH_PREVIEW_MAX_ROWS "
        f"({get_settings().preview_max_rows} here)",
    ),
]


# -- jobs, training and the model registry --------------------------------------------
# The services load SQLAlchemy (training: scikit-learn on first use): imported when a
# route first needs them, not when the Functions host indexes the app.
if TYPE_CHECKING:
    from shared.jobs.service import JobService
    from shared.services.models import ModelCatalog
    from shared.services.registry import ModelRegistry
    from shared.services.training import TrainingService


async def job_service(ctx: Ctx) -> JobService:
    from shared.jobs.service import JobService

    return JobService(ctx)


async def training_service(ctx: Ctx) -> TrainingService:
    from shared.services.training import TrainingService

    return TrainingService(ctx)


async def model_catalog(ctx: Ctx) -> ModelCatalog:
    from shared.services.models import ModelCatalog

    return ModelCatalog(ctx.db)


async def model_registry(ctx: Ctx) -> ModelRegistry:
    from shared.services.online_backfill import start_backfill
    from shared.services.registry import ModelRegistry

    return ModelRegistry(
        ctx.db,
        on_change=ctx.model_changed,
        backfill=lambda model, replace: start_backfill(
            ctx, model, replace_live=replace
        ),
    )


JobServiceDep = Annotated["JobService", Depends(job_service)]
TrainingServiceDep = Annotated["TrainingService", Depends(training_service)]
ModelCatalogDep = Annotated["ModelCatalog", Depends(model_catalog)]
ModelRegistryDep = Annotated["ModelRegistry", Depends(model_registry)]
