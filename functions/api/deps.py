"""Typed dependencies of the routes: the services come from the container, built once
per process, never per request."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Query

from shared.config import Settings, get_settings
from shared.container import Container, container
from shared.services.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE,
    MAX_PAGE_SIZE,
    PageRequest,
)

if TYPE_CHECKING:  # built by the container on first use, not when the app is indexed
    from shared.services.datasets import DatasetService
    from shared.services.features import FeatureService
    from shared.services.health import HealthService
    from shared.services.predictions import Predictor

# async: a sync dependency would cost every request a thread-pool round trip


async def app_container() -> Container:
    return container()


Ctx = Annotated[Container, Depends(app_container)]


async def settings(app: Ctx) -> Settings:
    return app.settings


async def dataset_service(app: Ctx) -> DatasetService:
    return app.datasets


async def feature_service(app: Ctx) -> FeatureService:
    return app.features


async def health_service(app: Ctx) -> HealthService:
    return app.health


async def predictor(app: Ctx) -> Predictor:
    return app.predictor


SettingsDep = Annotated[Settings, Depends(settings)]
DatasetServiceDep = Annotated["DatasetService", Depends(dataset_service)]
FeatureServiceDep = Annotated["FeatureService", Depends(feature_service)]
HealthServiceDep = Annotated["HealthService", Depends(health_service)]
PredictorDep = Annotated["Predictor", Depends(predictor)]

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
if TYPE_CHECKING:
    from shared.services.backtest import Backtests
    from shared.services.jobs import JobService
    from shared.services.model_evaluation import ModelEvaluations
    from shared.services.models import ModelCatalog
    from shared.services.registry import ModelRegistry
    from shared.services.training import TrainingService


async def job_service(app: Ctx) -> JobService:
    return app.jobs


async def training_service(app: Ctx) -> TrainingService:
    return app.training


async def model_catalog(app: Ctx) -> ModelCatalog:
    return app.catalog


async def model_registry(app: Ctx) -> ModelRegistry:
    return app.registry


async def model_evaluations(app: Ctx) -> ModelEvaluations:
    return app.evaluations


async def backtests(app: Ctx) -> Backtests:
    return app.backtests


JobServiceDep = Annotated["JobService", Depends(job_service)]
TrainingServiceDep = Annotated["TrainingService", Depends(training_service)]
ModelCatalogDep = Annotated["ModelCatalog", Depends(model_catalog)]
ModelRegistryDep = Annotated["ModelRegistry", Depends(model_registry)]
ModelEvaluationsDep = Annotated["ModelEvaluations", Depends(model_evaluations)]
BacktestsDep = Annotated["Backtests", Depends(backtests)]


# -- monitoring and alerts ------------------------------------------------------------
if TYPE_CHECKING:
    from shared.services.alert_rules import AlertRules
    from shared.services.alerts import AlertService
    from shared.services.drift_audits import DriftAudits
    from shared.services.performance import PerformanceService


async def drift_audits(app: Ctx) -> DriftAudits:
    return app.drift_audits


async def performance_service(app: Ctx) -> PerformanceService:
    return app.performance


async def alert_service(app: Ctx) -> AlertService:
    return app.alerts


DriftAuditsDep = Annotated["DriftAudits", Depends(drift_audits)]
PerformanceServiceDep = Annotated["PerformanceService", Depends(performance_service)]


async def alert_rules(app: Ctx) -> AlertRules:
    return app.alert_rules


AlertServiceDep = Annotated["AlertService", Depends(alert_service)]
AlertRulesDep = Annotated["AlertRules", Depends(alert_rules)]
# -- bias -------------------------------------------------------------------------------
if TYPE_CHECKING:
    from shared.services.bias_audits import BiasAudits
    from shared.services.fairness import ProtectedAttributes


async def protected_attributes(app: Ctx) -> ProtectedAttributes:
    return app.protected_attributes


ProtectedAttributesDep = Annotated["ProtectedAttributes", Depends(protected_attributes)]


async def bias_audits(app: Ctx) -> BiasAudits:
    return app.bias_audits


BiasAuditsDep = Annotated["BiasAudits", Depends(bias_audits)]
# -- retraining ---------------------------------------------------------------------------
if TYPE_CHECKING:
    from shared.services.retraining import RetrainingService


async def retraining_service(app: Ctx) -> RetrainingService:
    return app.retraining


RetrainingServiceDep = Annotated["RetrainingService", Depends(retraining_service)]
