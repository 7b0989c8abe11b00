"""Requests and answers of the retraining routes (spec section 9), as
``shared.services.retraining`` takes and gives them.

The schema says what JSON Schema can (known strategy types, weights in [0, 1]); which
fields a strategy needs, weights summing to 1, the window's form and the datasets'
existence are the service's checks (422 or 404 naming the field)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from functions.api.schemas import Record
from shared.services.retraining_commands import (
    DataStrategy,
    PromoteChallenger,
    RetrainingQuery,
    SampleWeights,
    TriggerRetraining,
)

__all__ = ["RetrainingQuery"]

Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Id = Annotated[str, Field(min_length=1, max_length=100)]
Version = Annotated[str, Field(min_length=1, max_length=50)]
Actor = Annotated[str, Field(max_length=255, description="Who asks (until SSO)")]
Reason = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class SampleWeightsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new: Share = Field(description="The new data's share of the training weight")
    historical: Share = Field(description="The historical data's share; sums to 1")


class DataStrategyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["replace", "merge", "sliding_window"] = Field(
        description="replace: the new data only; merge: new and historical, weighted; "
        "sliding_window: the most recent window of the new (and historical) data"
    )
    new_dataset_id: Id | None = Field(
        None,
        description="Required for merge; replace and sliding_window default to the "
        "dataset the champion's features came from",
    )
    new_dataset_version: Version | None = Field(None, description="Default: latest")
    historical_dataset_id: Id | None = Field(
        None, description="merge (required) and sliding_window (optional)"
    )
    historical_dataset_version: Version | None = Field(
        None, description="Default: latest"
    )
    sample_weights: SampleWeightsIn | None = Field(
        None,
        description="With a historical dataset: each source's share of the total "
        "weight, summing to 1 (default: every row weighs 1)",
    )
    window: str | None = Field(
        None,
        max_length=20,
        description='sliding_window (required): the most recent span kept, e.g. "30d", '
        '"12h", "2w"',
    )

    def to_command(self) -> DataStrategy:
        weights = self.sample_weights
        return DataStrategy(
            **self.model_dump(exclude={"sample_weights"}),
            sample_weights=None
            if weights is None
            else SampleWeights(weights.new, weights.historical),
        )


class TriggerRetrainingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "model_id": "uuid",
                "reason": "Data drift detected",
                "data_strategy": {
                    "type": "merge",
                    "new_dataset_id": "uuid",
                    "historical_dataset_id": "uuid",
                    "sample_weights": {"new": 0.7, "historical": 0.3},
                },
                "auto_promote": False,
            }
        },
    )
    model_id: Id = Field(description="The model to retrain: the champion")
    reason: Reason
    data_strategy: DataStrategyIn
    auto_promote: bool = Field(
        False,
        description="Promote the challenger to production when every gate passes "
        "(false: it waits in STAGING for POST /retraining/jobs/{id}/promote)",
    )
    actor: Actor | None = None

    def to_command(self) -> TriggerRetraining:
        return TriggerRetraining(
            model_id=self.model_id,
            reason=self.reason,
            data_strategy=self.data_strategy.to_command(),
            auto_promote=self.auto_promote,
            actor=self.actor,
        )


class PromoteChallengerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason
    actor: Actor | None = None

    def to_command(self, job_id: str) -> PromoteChallenger:
        return PromoteChallenger(job_id, self.reason, self.actor)


class RetrainingAccepted(BaseModel):
    job_id: str
    status: str = Field(description="PENDING")
    model_id: str
    estimated_time_seconds: float


class HoldoutMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    auc_roc: float | None
    auc_pr: float | None = Field(description="Average precision")
    precision: float
    recall: float
    f1_score: float
    fpr: float
    threshold: float
    support: int
    positives: int


class ModelOnHoldout(BaseModel):
    model_id: str
    name: str
    version: str
    algorithm: str
    threshold: float | None
    metrics: HoldoutMetrics
    missing_features: list[str] = Field(
        description="The model's features the new feature set lacks (scored missing)"
    )


class GateView(BaseModel):
    name: Literal["baselines", "onnx_parity", "bias", "champion_comparison"]
    passed: bool
    value: Any
    threshold: Any
    message: str


class RetrainingJob(BaseModel):
    job_id: str
    status: str = Field(
        description="PENDING, RUNNING, CANCELLING, COMPLETED, FAILED, CANCELLED"
    )
    stage: str | None = Field(
        description="queued, assemble, features, train, evaluate, gates, promote, "
        "done or failed"
    )
    progress: float = Field(ge=0, le=1)
    message: str | None
    model_id: str | None = Field(description="The champion")
    model_name: str | None
    reason: str | None
    trigger: str | None = Field(description="api or alert")
    alert_id: str | None
    auto_promote: bool
    data_strategy: Record
    steps: Record = Field(description="What each finished step made or found")
    challenger_model_id: str | None
    champion: ModelOnHoldout | None
    challenger: ModelOnHoldout | None
    holdout: Record | None = Field(
        description="The shared holdout: period, rows, frauds"
    )
    gates: list[GateView] | None
    decided_by: str | None = Field(
        description="The first gate that failed, or all_gates_passed"
    )
    promoted: bool
    promotion: Record | None
    failed_step: str | None
    error_message: str | None
    created_at: str | None
    started_at: str | None
    completed_at: str | None
