"""Requests and answers of the bias routes (spec section 7), as
``shared.services.fairness`` takes and gives them.

The schema says what JSON Schema can: a group has either ``values`` or a bin's
``min``/``max``, the groups are all of one kind, known metrics only. Duplicate group
names, a value in two groups, overlapping bins and a critical threshold on the wrong
side of its warning are the service's checks (422 naming the field)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from shared.services.bias_commands import BiasAuditCommand, BiasMetricsQuery
from shared.services.fairness_commands import (
    AttributeQuery,
    ConfigureAttribute,
    GroupConfig,
    LevelConfig,
)

__all__ = ["AttributeQuery", "BiasMetricsQuery"]

ATTRIBUTE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
AttributeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=ATTRIBUTE_NAME_PATTERN,
        description="Unique name: letters, digits, '_', '.', '-'",
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=100, pattern=r"\S")]
Value = Annotated[StrictStr, Field(max_length=200)] | StrictInt | StrictFloat
Bound = Annotated[float, Field(allow_inf_nan=False)]
Rate = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]

_BIN: JsonDict = {"anyOf": [{"required": ["min"]}, {"required": ["max"]}]}


_VALUES: JsonDict = {"required": ["values"]}
_ONE_OF: JsonDict = {
    "oneOf": [{**_VALUES, "not": _BIN}, {**_BIN, "not": _VALUES}],
}


class GroupIn(BaseModel):
    """A categorical group (``values``) or a numeric bin ``[min, max)``."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra=_ONE_OF,
    )

    name: Text
    values: (
        Annotated[list[Value], Field(min_length=1, max_length=1000)]
        | SkipJsonSchema[None]
    ) = Field(None, description="The column values of the group")
    min: Bound | SkipJsonSchema[None] = Field(
        None, description="Lowest value in the bin (open when left out)"
    )
    max: Bound | SkipJsonSchema[None] = Field(
        None, description="First value past the bin (open when left out)"
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("values", "min", "max"):
                if key in data and data[key] is None:
                    raise ValueError(f"{key} is null: leave it out instead")
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> GroupIn:
        binned = self.min is not None or self.max is not None
        if (self.values is None) == (not binned):
            raise ValueError("give either values or a bin's min and/or max")
        return self

    def to_config(self) -> GroupConfig:
        values = tuple(self.values) if self.values is not None else None
        return GroupConfig(self.name, values, self.min, self.max)


class LevelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    warning: Rate
    critical: Rate = Field(
        description="Beyond the warning threshold: above it for the differences, "
        "below it for disparate impact"
    )


class ThresholdsIn(BaseModel):
    """Per metric; a metric left out (or null) takes its default."""

    model_config = ConfigDict(extra="forbid", strict=True)
    demographic_parity_diff: LevelIn | None = None
    equalized_odds_diff: LevelIn | None = None
    disparate_impact: LevelIn | None = None
    fpr_parity_diff: LevelIn | None = None


_ONE_KIND: JsonDict = {
    "anyOf": [
        {"items": {"required": ["values"]}},
        {"items": {"not": {"required": ["values"]}}},
    ]
}


class ConfigureAttributeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "example": {
                "attribute_name": "age_group",
                "column_name": "age",
                "groups": [
                    {"name": "18-25", "min": 18, "max": 26},
                    {"name": "26-45", "min": 26, "max": 46},
                    {"name": "46+", "min": 46},
                ],
                "thresholds": {"disparate_impact": {"warning": 0.8, "critical": 0.6}},
                "is_active": True,
            }
        },
    )

    attribute_name: AttributeName
    column_name: Text = Field(description="The data column holding the attribute")
    groups: list[GroupIn] = Field(
        min_length=1,
        max_length=100,
        json_schema_extra=_ONE_KIND,
        description="All categorical (values) or all numeric bins (min/max)",
    )
    thresholds: ThresholdsIn | None = None
    is_active: bool = True

    @field_validator("groups")
    @classmethod
    def _same_kind(cls, groups: list[GroupIn]) -> list[GroupIn]:
        if len({g.values is None for g in groups}) > 1:
            raise ValueError("groups are all categorical (values) or all numeric bins")
        return groups

    def to_command(self) -> ConfigureAttribute:
        given = self.thresholds.model_dump() if self.thresholds else {}
        return ConfigureAttribute(
            attribute_name=self.attribute_name,
            column_name=self.column_name,
            groups=tuple(g.to_config() for g in self.groups),
            thresholds={
                m: LevelConfig(t["warning"], t["critical"])
                for m, t in given.items()
                if t is not None
            },
            is_active=self.is_active,
        )


# -- answers ---------------------------------------------------------------------------


class GroupOut(BaseModel):
    name: str
    values: list[str | int | float] | None = Field(description="Categorical groups")
    min: float | None = Field(description="Numeric bins: lowest value (null: open)")
    max: float | None = Field(description="Numeric bins: first value past the bin")


class LevelOut(BaseModel):
    warning: float
    critical: float


class ProtectedAttribute(BaseModel):
    id: str
    attribute_name: str
    column_name: str
    kind: Literal["categorical", "numeric"]
    groups: list[GroupOut]
    thresholds: dict[str, LevelOut] = Field(
        description="Every metric's thresholds, defaults filled in"
    )
    is_active: bool = Field(description="False once retired")
    created_at: str | None


class ConfiguredAttribute(ProtectedAttribute):
    created: bool = Field(description="False: an existing attribute was replaced")


# -- audits ----------------------------------------------------------------------------

Source = Literal["test_set", "predictions"]
Window = Literal["1h", "24h", "7d", "30d"]


_NO_WINDOW: JsonDict = {
    "properties": {
        "window": {"type": "null"},
        "window_start": {"type": "null"},
        "window_end": {"type": "null"},
    }
}
# a window only with source predictions
_WINDOWED: JsonDict = {
    "anyOf": [
        {"required": ["source"], "properties": {"source": {"const": "predictions"}}},
        _NO_WINDOW,
    ]
}


class BiasAuditRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **_WINDOWED,
            "example": {"model_id": "uuid", "source": "predictions", "window": "7d"},
        },
    )
    model_id: str = Field(description="The audited model")
    source: Source = Field(
        "test_set",
        description="test_set: the model's stored test rows with the feature set's "
        "protected columns; predictions: the labelled predictions of a window with "
        "the protected attributes logged with them",
    )
    window: Window | None = Field(
        None,
        description="predictions only: ends at window_end (default now); default 24h "
        "unless window_start is given",
    )
    window_start: datetime | None = Field(
        None, description="predictions only: explicit start; UTC if naive"
    )
    window_end: datetime | None = Field(
        None, description="predictions only: up to, not including (default now)"
    )

    def to_command(self) -> BiasAuditCommand:
        return BiasAuditCommand(
            self.model_id,
            self.source,
            self.window,
            self.window_start,
            self.window_end,
        )


class GroupRates(BaseModel):
    fpr: float | None = Field(description="null: no negative label in the group")
    tpr: float | None = Field(description="null: no positive label in the group")
    selection_rate: float | None
    count: int = Field(description="Labelled rows of the group")


class BiasMetricValues(BaseModel):
    """The metrics with a value (a metric left out is undefined: fewer than two
    groups with enough rows)."""

    demographic_parity_diff: float | None = None
    equalized_odds_diff: float | None = None
    disparate_impact: float | None = None
    fpr_parity_diff: float | None = None


class AttributeBias(BaseModel):
    attribute: str
    groups: list[str]
    metrics: BiasMetricValues
    status: str = Field(
        description="OK, WARNING, CRITICAL, INSUFFICIENT_DATA, MISSING_COLUMN or "
        "NO_DATA"
    )
    group_breakdown: dict[str, GroupRates]


class BiasMetrics(BaseModel):
    model_id: str
    protected_attributes: list[AttributeBias]
    computed_at: str | None
    audit_id: str
    source: Source
    report_url: str = Field(description="The audit's HTML report")
