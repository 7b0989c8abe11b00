"""Shapes of the answers' ``data``, for the OpenAPI document (``Envelope[...]``).

Documentation only: routes answer through ``envelope.ok``, so nothing is validated on the
way out; ``tests/api/test_openapi_contract.py`` checks the answers against them. Where a
service's answer is a rich record still growing, ``Record`` says "an object"."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Record = dict[str, Any]


class Probe(BaseModel):
    status: str = Field(description="ok or unreachable")
    latency_ms: float
    backend: str
    error: str | None = None


class HealthReport(BaseModel):
    status: str = Field(description="ok, or degraded when a probe failed (then 503)")
    runtime: str
    database: Probe
    storage: Probe
    worker: Record = Field(description="This worker: pid, prediction log, caches")


class JobAccepted(BaseModel):
    job_id: str
    status: str = Field(description="PENDING or QUEUED")
    estimated_time_seconds: float


class Job(BaseModel):
    job_id: str
    kind: str
    status: str = Field(
        description="PENDING, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED"
    )
    progress: float = Field(ge=0, le=1)
    message: str | None
    input: Record | None
    result: Record | None
    error_message: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
    elapsed_seconds: float | None
    eta_seconds: float | None


class FeatureJob(Job):
    feature_set_id: str | None = Field(description="Once the job has completed")


class Decision(BaseModel):
    prediction_id: str = Field(description="Stable per (model, transaction id)")
    transaction_id: str
    fraud_score: float
    is_fraud: bool = Field(description="fraud_score >= the model's threshold")
    confidence: float = Field(ge=0.5, le=1)
    replayed: bool = Field(description="A retry: the first answer, given again")


class ModelFields(BaseModel):
    threshold: float
    model_id: str
    model_name: str
    model_version: str


class Prediction(Decision, ModelFields):
    latency_ms: float
    explanation: Record | None = Field(
        description="Top features and SHAP values (/predict/explain only)"
    )


class BatchPrediction(ModelFields):
    count: int
    flagged: int
    latency_ms: float
    predictions: list[Decision]


class LabelsRecorded(BaseModel):
    updated: int = Field(description="Logged predictions given their actual label")
    online_state_updated: int
    unmatched_prediction_ids: list[str]
    unmatched_transaction_ids: list[str]
