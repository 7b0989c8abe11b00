"""Per-feature statistics: the baseline that drift checks compare new data against.

Numeric features get quantile-based histogram edges (so every bin holds data even
for skewed amounts), counts, quantiles and moments; categorical ones (flags, hour,
day of week, strings, low-cardinality integers) get category frequencies. All
values are plain JSON types. `bin_counts` bins new data on baseline edges.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ml.features.registry import FeatureSpec

if TYPE_CHECKING:
    import pandas as pd

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)


def numeric_stats(values: npt.ArrayLike, bins: int = 10) -> dict[str, Any]:
    """Histogram on quantile edges (duplicates merged), quantiles and moments."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    stats: dict[str, Any] = {
        "kind": "numeric",
        "count": int(array.size),
        "null_count": int(array.size - finite.size),
    }
    if finite.size == 0:
        stats.update(bin_edges=[], bin_counts=[], quantiles={}, mean=None, std=None)
        stats.update(min=None, max=None)
        return stats
    # one partition pass for the bin edges and the reported quantiles together
    probs = np.concatenate([np.linspace(0.0, 1.0, bins + 1), [q for _, q in QUANTILES]])
    values = np.asarray(np.quantile(finite, probs), dtype=np.float64)
    edges = np.unique(values[: bins + 1])
    if edges.size == 1:  # constant column: one degenerate bin
        edges = np.array([edges[0], edges[0]])
    stats["bin_edges"] = [float(e) for e in edges]
    stats["bin_counts"] = bin_counts(finite, stats["bin_edges"])
    stats["quantiles"] = {
        name: float(q)
        for (name, _), q in zip(QUANTILES, values[bins + 1 :], strict=True)
    }
    stats["mean"] = float(finite.mean())
    stats["std"] = float(finite.std(ddof=0))
    stats["min"] = float(finite.min())
    stats["max"] = float(finite.max())
    return stats


def bin_counts(values: npt.ArrayLike, edges: list[float]) -> list[int]:
    """Counts per bin [e_i, e_i+1) (last bin closed); outliers go to the end bins."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    n_bins = max(len(edges) - 1, 1)
    if not edges:
        return []
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, array, side="right")
    return [int(c) for c in np.bincount(index, minlength=n_bins)[:n_bins]]


def _category_key(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def categorical_stats(values: Iterable[Any]) -> dict[str, Any]:
    """Counts and shares per category (keys as strings); missing values counted apart."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(list(values))
    nulls = int(series.isna().sum())
    counts = series.dropna().value_counts(sort=False)
    frequencies: dict[str, int] = {}
    for value, count in zip(counts.index.tolist(), counts.tolist(), strict=True):
        key = _category_key(value)
        frequencies[key] = frequencies.get(key, 0) + int(count)
    frequencies = dict(sorted(frequencies.items()))
    total = sum(frequencies.values())
    return {
        "kind": "categorical",
        "count": total + nulls,
        "null_count": nulls,
        "frequencies": frequencies,
        "proportions": {k: c / total for k, c in frequencies.items()},
    }


def _is_categorical(series: pd.Series, spec: FeatureSpec | None, limit: int) -> bool:
    import pandas as pd

    if spec is not None:
        return spec.is_categorical
    if pd.api.types.is_bool_dtype(series.dtype) or not pd.api.types.is_numeric_dtype(
        series.dtype
    ):
        return True
    return bool(pd.api.types.is_integer_dtype(series.dtype)) and (
        series.nunique(dropna=True) <= limit
    )


def feature_stats(
    frame: pd.DataFrame,
    specs: Iterable[FeatureSpec] | None = None,
    *,
    bins: int = 10,
    max_categories: int = 20,
    columns: Iterable[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Statistics for each feature column of `frame` (default: every spec'd column,
    or every column but transaction_id when no specs are given)."""
    by_name = {spec.name: spec for spec in specs or ()}
    if columns is None:
        columns = (
            list(by_name)
            if by_name
            else [c for c in frame.columns if c != "transaction_id"]
        )
    out: dict[str, dict[str, Any]] = {}
    for name in columns:
        series = frame[name]
        if _is_categorical(series, by_name.get(name), max_categories):
            out[name] = categorical_stats(series)
        else:
            out[name] = numeric_stats(
                series.to_numpy(dtype=np.float64, na_value=np.nan)
            )
    return out
