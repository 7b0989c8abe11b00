"""Batch (training) feature computation over a whole transactions table."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from ml.features.aggregation_features import Timeline, compute_aggregation
from ml.features.behavioral_features import compute_behavioral
from ml.features.config import (
    ROLES,
    FeatureConfig,
    Float64Array,
    PreparedTransactions,
    apply_column_mapping,
    prepare_transactions,
)
from ml.features.registry import FeatureSpec, select_features
from ml.features.temporal_features import compute_temporal
from ml.features.transaction_features import compute_transaction

GroupFn = Callable[
    [PreparedTransactions, Timeline, FeatureConfig, set[str]], dict[str, Float64Array]
]
_GROUPS: dict[str, GroupFn] = {
    "transaction": compute_transaction,
    "behavioral": compute_behavioral,
    "temporal": compute_temporal,
    "aggregation": compute_aggregation,
}


@dataclass(frozen=True)
class FeatureResult:
    """`frame`: transaction_id + one column per spec, rows in input order."""

    frame: pd.DataFrame
    specs: list[FeatureSpec]
    dropped: list[dict[str, str]] = field(default_factory=list)
    # columns the data had; pass to OnlineFeatureEngine(available_roles=...)
    available_roles: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return [spec.name for spec in self.specs]


def compute_feature_arrays(
    data: PreparedTransactions, config: FeatureConfig, specs: list[FeatureSpec]
) -> dict[str, Float64Array]:
    """All features as float64 arrays in input row order."""
    timeline = Timeline(data)
    values: dict[str, Float64Array] = {}
    for group in config.groups:
        wanted = {spec.name for spec in specs if spec.group == group}
        if wanted:
            values.update(_GROUPS[group](data, timeline, config, wanted))
    missing = [spec.name for spec in specs if spec.name not in values]
    if missing:  # a registry entry without an implementation is a bug
        raise RuntimeError(f"features not computed: {missing}")
    return values


def compute_features(
    df: pd.DataFrame,
    config: FeatureConfig | None = None,
    *,
    column_mapping: Mapping[str, str] | None = None,
) -> FeatureResult:
    """Point-in-time correct features for every row of `df`.

    Each row sees only transactions at strictly earlier timestamps (ties never see
    each other) and labels only once known (s + label_delay <= t). Features whose
    input column is missing are left out and listed in `dropped`.
    Raises FeatureInputError on bad input or configuration.
    """
    config = config or FeatureConfig()
    data = prepare_transactions(apply_column_mapping(df, column_mapping))
    specs, dropped = select_features(config, data.roles)
    values = compute_feature_arrays(data, config, specs)
    columns: dict[str, object] = {"transaction_id": data.transaction_id}
    for spec in specs:
        columns[spec.name] = values.pop(spec.name).astype(spec.dtype, copy=False)
    frame = pd.DataFrame(columns)
    frame["transaction_id"] = frame["transaction_id"].astype("string")
    roles = tuple(role for role in ROLES if role in data.roles)
    return FeatureResult(frame, specs, dropped, roles)


__all__ = ["FeatureResult", "compute_feature_arrays", "compute_features"]
