"""A retraining's training data from its sources: the new data alone (replace), the new
and the historical data with a weight per row (merge), or the most recent window of
either (sliding window).

Weights: with shares ``(new, historical)`` summing to 1, every new row weighs
``new * n / n_new`` and every historical row ``historical * n / n_historical``, so the
weights of each source add up to its share of the total ``n`` (the mean weight stays 1,
which keeps weight-sensitive hyperparameters such as ``min_child_weight`` meaning what
they meant). Without shares every row weighs 1. A source with no rows left (a window
that misses it) gives its share to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

SAMPLE_WEIGHT = "sample_weight"
SOURCE = "_retraining_source"
Strategy = Literal["replace", "merge", "sliding_window"]


class DataStrategyError(ValueError):
    """Sources that cannot be assembled; ``field`` names the request field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class AssemblyPlan:
    strategy: Strategy
    timestamp_column: str = "timestamp"
    id_column: str | None = "transaction_id"
    shares: tuple[float, float] | None = None  # (new, historical)
    window_ns: int | None = None  # sliding_window: the most recent span kept


@dataclass(frozen=True)
class Assembled:
    frame: pd.DataFrame  # the sources' shared columns plus SAMPLE_WEIGHT
    rows_new: int
    rows_historical: int
    weight_new: float  # the sum of the new rows' weights
    weight_historical: float
    duplicates_dropped: int  # historical rows whose id the new data has too
    rows_outside_window: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None

    def summary(self) -> dict[str, Any]:
        return {
            "rows": len(self.frame),
            "rows_new": self.rows_new,
            "rows_historical": self.rows_historical,
            "weight_new": round(self.weight_new, 6),
            "weight_historical": round(self.weight_historical, 6),
            "duplicates_dropped": self.duplicates_dropped,
            "rows_outside_window": self.rows_outside_window,
            "start": None if self.start is None else self.start.isoformat(),
            "end": None if self.end is None else self.end.isoformat(),
        }


def timestamps(frame: pd.DataFrame, column: str, field: str) -> pd.Series:
    """The column as UTC datetimes (naive ones taken as UTC)."""
    if column not in frame.columns:
        raise DataStrategyError(f"the data has no timestamp column {column!r}", field)
    series = frame[column]
    parsed: pd.Series
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
        return parsed
    if pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = series.dt.tz_localize("UTC")
        return parsed
    parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
    if bool(parsed.isna().any()):
        raise DataStrategyError(
            f"timestamp column {column!r} has missing or unparseable values", field
        )
    return parsed


def assemble(
    new: pd.DataFrame, historical: pd.DataFrame | None, plan: AssemblyPlan
) -> Assembled:
    """The training rows of ``plan`` with their weights, oldest first."""
    columns = [c for c in new.columns if c != SAMPLE_WEIGHT]
    duplicates = 0
    parts = [new[columns].assign(**{SOURCE: 0})]
    if historical is not None:
        columns = [c for c in columns if c in historical.columns]
        old = historical
        key = plan.id_column
        if key is not None and key in new.columns and key in historical.columns:
            known = historical[key].astype("string").isin(new[key].astype("string"))
            duplicates = int(known.sum())
            old = historical[~known.to_numpy()]
        parts = [new[columns].assign(**{SOURCE: 0}), old[columns].assign(**{SOURCE: 1})]
    frame = pd.concat(parts, ignore_index=True)
    ts = timestamps(frame, plan.timestamp_column, "data_strategy.new_dataset_id")
    outside = 0
    if plan.window_ns is not None:
        cutoff = ts.max() - pd.Timedelta(plan.window_ns, unit="ns")
        inside = (ts > cutoff).to_numpy()
        outside = int((~inside).sum())
        frame, ts = frame[inside], ts[inside]
    order = np.argsort(ts.to_numpy(), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    ts = ts.iloc[order].reset_index(drop=True)
    if frame.empty:
        raise DataStrategyError("no rows left to train on", "data_strategy")
    source = frame.pop(SOURCE).to_numpy()
    weight = row_weights(source, plan.shares)
    frame[SAMPLE_WEIGHT] = weight
    is_new = source == 0
    return Assembled(
        frame=frame,
        rows_new=int(is_new.sum()),
        rows_historical=int((~is_new).sum()),
        weight_new=float(weight[is_new].sum()),
        weight_historical=float(weight[~is_new].sum()),
        duplicates_dropped=duplicates,
        rows_outside_window=outside,
        start=ts.iloc[0],
        end=ts.iloc[-1],
    )


def row_weights(
    source: np.ndarray[Any, Any], shares: tuple[float, float] | None
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per row (``source`` 0 new, 1 historical) the weight that gives each source its
    share of the total; every row 1 without shares."""
    n = source.size
    weight = np.ones(n, dtype=np.float64)
    if shares is None:
        return weight
    counts = [int((source == s).sum()) for s in (0, 1)]
    present = [shares[s] if counts[s] else 0.0 for s in (0, 1)]
    total = sum(present)
    for s in (0, 1):
        if counts[s]:
            weight[source == s] = present[s] / total * n / counts[s]
    return weight
