"""Point-in-time correct fraud features: one definition, batch and online.

`compute_features` (batch, needs pandas) is imported lazily so that importing the
online path (`ml.features.online`) never loads pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml.features.config import (
    GROUPS,
    ROLES,
    FeatureConfig,
    FeatureInputError,
    apply_column_mapping,
)
from ml.features.online import (
    EntityKey,
    OnlineFeatureEngine,
    State,
    backfill_states,
    copy_state,
    entity_key,
    state_from_json,
    state_to_json,
)
from ml.features.registry import FeatureSpec, feature_specs, select_features

if TYPE_CHECKING:
    from ml.features.batch import FeatureResult, compute_features
    from ml.features.stats import feature_stats

_LAZY = {
    "FeatureResult": "ml.features.batch",
    "compute_features": "ml.features.batch",
    "feature_stats": "ml.features.stats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ml.features' has no attribute {name!r}")


__all__ = [
    "GROUPS",
    "ROLES",
    "EntityKey",
    "FeatureConfig",
    "FeatureInputError",
    "FeatureResult",
    "FeatureSpec",
    "OnlineFeatureEngine",
    "State",
    "apply_column_mapping",
    "backfill_states",
    "compute_features",
    "copy_state",
    "entity_key",
    "feature_specs",
    "feature_stats",
    "select_features",
    "state_from_json",
    "state_to_json",
]
