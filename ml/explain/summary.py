"""`top_features`: the few features that moved a score most, ready for JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.explain.reasons import reason

__all__ = ["top_features"]


def _plain(value: Any) -> float | None:
    # a float32 prints at its own shortest repr (89.83, not 89.83000183105469)
    number = float(str(value)) if isinstance(value, np.float32) else float(value)
    return number if math.isfinite(number) else None


def top_features(
    feature_names: list[str],
    values_row: npt.ArrayLike,
    contributions_row: npt.ArrayLike,
    k: int = 5,
) -> list[dict[str, Any]]:
    """The `k` largest contributions by magnitude, largest first (ties: feature order).

    Each item is ``{"feature", "contribution", "value", "reason"}`` with plain Python
    types: contribution a float, value a float or None (missing/NaN). Features whose
    contribution is exactly 0 (unused by the model, or missing for the MLP) are never
    listed, so fewer than `k` items may come back.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    values = np.asarray(values_row).reshape(-1)
    if values.dtype != np.float32:
        values = values.astype(np.float64)
    contributions = np.asarray(contributions_row, dtype=np.float64).reshape(-1)
    n = len(feature_names)
    if values.shape != (n,) or contributions.shape != (n,):
        raise ValueError(
            f"{n} feature names, {values.size} values, {contributions.size} "
            "contributions"
        )
    row = {
        name: _plain(value) for name, value in zip(feature_names, values, strict=True)
    }
    order = np.argsort(-np.abs(contributions), kind="stable")
    items: list[dict[str, Any]] = []
    for i in order[:k]:
        contribution = float(contributions[i])
        if contribution == 0.0 or not math.isfinite(contribution):
            break
        name = feature_names[i]
        value = row[name]
        items.append(
            {
                "feature": name,
                "contribution": contribution,
                "value": value,
                "reason": reason(name, value, contribution, row),
            }
        )
    return items
