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
