"""The protected-attribute use cases' typed commands and answers; light to import (the
HTTP app builds the commands, and the Functions host indexes that app without numpy).

The metric names and their default thresholds are ``ml.fairness``'s; a test keeps
these copies equal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

MetricName = Literal[
    "demographic_parity_diff",
    "equalized_odds_diff",
    "disparate_impact",
    "fpr_parity_diff",
]
GroupKind = Literal["categorical", "numeric"]
Value = str | int | float


@dataclass(frozen=True)
class GroupConfig:
    """A categorical group (``values``) or a numeric bin ``[low, high)`` (either
    bound may be open)."""

    name: str
    values: tuple[Value, ...] | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class LevelConfig:
    warning: float
    critical: float


@dataclass(frozen=True)
class ConfigureAttribute:
    """Create the attribute, or replace its configuration when the name is known
    (thresholds left out take their defaults)."""

    attribute_name: str
    column_name: str
    groups: tuple[GroupConfig, ...]
    thresholds: Mapping[str, LevelConfig] = field(default_factory=dict)  # MetricName
    is_active: bool = True


@dataclass(frozen=True)
class AttributeQuery:
    page: int = 1
    page_size: int = 20
    active: bool | None = None  # None: active and retired alike


@dataclass(frozen=True)
class GroupView:
    name: str
    values: list[Value] | None
    min: float | None
    max: float | None


@dataclass(frozen=True)
class ProtectedAttributeView:
    id: str
    attribute_name: str
    column_name: str
    kind: GroupKind
    groups: list[GroupView]
    thresholds: dict[str, LevelConfig]
    is_active: bool
    created_at: str | None


@dataclass(frozen=True)
class ConfiguredAttribute(ProtectedAttributeView):
    created: bool  # False: an existing attribute's configuration was replaced
