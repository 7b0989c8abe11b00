"""Requests and answers of the monitoring and alert routes (spec sections 6 and 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.api.schemas import Record
from shared.services.monitoring_commands import AuditCommand

Window = Literal["1h", "24h", "7d", "30d"]
StoredWindow = Literal["1h", "24h", "7d", "30d", "custom"]
Status = Literal["OK", "WARNING", "CRITICAL", "NO_DATA"]


class DriftComputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_id: str = Field(description="The model whose logged predictions are audited")
    window: Window | None = Field(
        None,
        description="Ends at window_end (default now); default 24h unless "
        "window_start is given",
    )
    window_start: datetime | None = Field(
        None, description="Explicit start (instead of window); UTC if naive"
    )
    window_end: datetime | None = Field(
        None, description="Up to, not including, this time (default now); UTC if naive"
    )

    def to_command(self) -> AuditCommand:
        return AuditCommand(
            self.model_id, self.window, self.window_start, self.window_end
        )


class FeatureDriftSummary(BaseModel):
    name: str
    kind: Literal["numeric", "categorical"]
    psi: float | None = Field(description="On the training bins plus a missing bin")
    ks_statistic: float | None = Field(description="Numeric features")
    ks_p: float | None = Field(description="Numeric features")
    chi_square_p: float | None = Field(description="Categorical features")
    status: Status


class DataDriftView(BaseModel):
    overall_psi: float | None = Field(description="Mean of the features' PSI")
    status: Status
    rows: int = Field(description="Predictions read")
    features: list[FeatureDriftSummary]


class MetricSet(BaseModel):
    count: int
    precision: float | None
    recall: float | None
    auc: float | None


class ConceptDriftView(BaseModel):
    status: Status
    source: Literal["realised", "estimated"] = Field(
        description="Which current metrics set the status: realised once enough "
        "predictions are labelled"
    )
    performance_degradation: float | None = Field(
        description="Current minus training precision"
    )
    baseline_precision: float | None
    current_precision: float | None
    baseline_recall: float | None
    current_recall: float | None
    baseline_auc: float | None
    current_auc: float | None
    labelled_count: int
    estimated: MetricSet = Field(description="CBPE estimate over every prediction")
    realised: MetricSet | None = Field(description="On the labelled predictions")
    estimation_error: dict[str, float | None] = Field(
        description="Estimate minus realised, on the labelled predictions"
    )


class DriftResult(BaseModel):
    model_id: str
    window: StoredWindow
    window_start: str | None
    window_end: str | None
    status: Status = Field(description="The worse of data and concept drift")
    row_count: int
    data_drift: DataDriftView
    concept_drift: ConceptDriftView | None
    computed_at: str | None
    audit_id: str
    report_url: str = Field(description="The audit's HTML report")


class HistoryPoint(BaseModel):
    audit_id: str
    computed_at: str | None
    window_start: str | None
    window_end: str | None
    status: Status
    psi: float | None
    ks_statistic: float | None
    ks_p: float | None
    chi_square_p: float | None


class FeatureDriftDetail(FeatureDriftSummary):
    bins: list[str] = Field(description="The training bins, 'missing' last")
    baseline_counts: list[int]
    current_counts: list[int]
    baseline_shares: list[float]
    current_shares: list[float]
    baseline_quantiles: dict[str, float]
    current_quantiles: dict[str, float]
    baseline_missing_rate: float | None
    current_missing_rate: float | None
    history: list[HistoryPoint] = Field(
        description="Audits of this window, oldest first"
    )


class FeatureDrift(BaseModel):
    model_id: str
    window: StoredWindow
    audit_id: str
    computed_at: str | None
    features: list[FeatureDriftDetail]


class PerformanceBucket(BaseModel):
    start: str | None
    volume: int
    labelled_count: int
    predicted_fraud_rate: float | None = Field(description="Share scored >= threshold")
    realised_fraud_rate: float | None = Field(description="Among labelled predictions")
    score_quantiles: dict[str, float | None]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    realised: MetricSet | None = Field(description="Where labels exist")
    estimated: MetricSet | None = Field(description="CBPE, before labels arrive")


class Performance(BaseModel):
    model_id: str
    window: Window
    window_start: str | None
    window_end: str | None
    granularity: Literal["hour", "day"]
    threshold: float
    baseline: dict[str, float | None] = Field(description="Training metrics")
    buckets: list[PerformanceBucket]


class AlertView(BaseModel):
    id: str
    model_id: str | None
    rule_id: str | None
    alert_type: str = Field(description="DRIFT, BIAS, PERFORMANCE, LATENCY")
    severity: str = Field(description="INFO, WARNING, CRITICAL")
    title: str
    details: Record | None
    status: str = Field(description="ACTIVE, ACKNOWLEDGED, DISMISSED")
    acknowledged_by: str | None
    acknowledged_at: str | None
    created_at: str | None
