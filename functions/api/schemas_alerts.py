"""Requests and answers of the alert routes (spec section 8): alerts, their lifecycle
and the alert rules. The schema says what JSON Schema can; a status value on a numeric
source, a bad webhook URL or cooldown, an unknown model are the service's checks (422
naming the field)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

Record = dict[str, Any]
Source = Literal[
    "drift_status",
    "feature_drift",
    "concept_drift",
    "estimated_performance",
    "bias_metric",
    "latency_p99",
    "error_rate",
    "prediction_volume",
]
Severity = Literal["INFO", "WARNING", "CRITICAL"]


class AlertView(BaseModel):
    id: str
    model_id: str | None
    rule_id: str | None
    alert_type: str = Field(description="DRIFT, BIAS, PERFORMANCE, LATENCY")
    severity: str = Field(description="INFO, WARNING, CRITICAL")
    title: str
    details: Record | None
    status: str = Field(description="ACTIVE, ACKNOWLEDGED, DISMISSED")
    acknowledged_by: str | None = Field(description="who acknowledged (actor name)")
    acknowledged_at: str | None
    ack_note: str | None
    dismissed_reason: str | None
    dismissed_at: str | None
    occurrences: int = Field(description="matches of the rule within its cooldown")
    last_seen_at: str | None
    created_at: str | None


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    op: Literal[">", ">=", "<", "<=", "=="]
    value: StrictInt | StrictFloat | Literal["OK", "WARNING", "CRITICAL"] = Field(
        description="a number; a status (OK < WARNING < CRITICAL) for drift_status "
        "and bias_metric"
    )


class DataStrategy(BaseModel):
    """As in POST /retraining/trigger; the retraining service checks the rest."""

    model_config = ConfigDict(extra="allow")
    type: Literal["replace", "merge", "sliding_window"]


class RetrainAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["retrain"]
    data_strategy: DataStrategy
    auto_promote: StrictBool = False


WebhookUrl = Annotated[str, Field(pattern=r"^https?://[^\s/?#]+", max_length=2000)]
Cooldown = Annotated[str, Field(pattern=r"^(\d{1,8}s?|\d{1,6}m|\d{1,5}h|\d{1,4}d)$")]
MAX_COOLDOWN = 9999 * 86400


class AlertRuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255, pattern=r"\S")
    source: Source
    model_id: uuid.UUID | None = Field(None, description="null: every model")
    condition: Condition
    severity: Severity
    cooldown: (
        Annotated[StrictInt, Field(ge=0, le=MAX_COOLDOWN)]
        | Annotated[StrictFloat, Field(ge=0, le=MAX_COOLDOWN, multiple_of=1)]
        | Cooldown
    ) = Field(3600, description='deduplication window: seconds, or "30m", "1h", "1d"')
    channels: list[WebhookUrl] = Field(
        default_factory=list, description="webhook URLs (http or https)"
    )
    action: RetrainAction | None = None
    is_active: StrictBool = True


class AlertRuleView(BaseModel):
    id: str
    name: str
    source: str | None
    alert_type: str
    model_id: str | None
    condition: Record | None
    severity: str
    cooldown_seconds: int
    channels: list[str]
    action: Record | None
    is_active: bool
    is_default: bool
    created_at: str | None


class AcknowledgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2000)
    actor: str | None = Field(
        None, max_length=255, description='who acknowledges (default "anonymous")'
    )


class DismissBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)
    actor: str | None = Field(None, max_length=255)
