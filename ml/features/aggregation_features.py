"""Trailing-window aggregations, plus the point-in-time index every batch group uses.

Point-in-time rule: a transaction at time t sees only events at times strictly
before t; transactions sharing a timestamp never see each other. A trailing window
w covers event times in [t - w, t).

Batch machinery: distinct timestamps get dense ranks, so "(entity, time)" becomes
one sortable int64 key `code * width + rank` that cannot overflow; window bounds
are then `np.searchsorted` on that key, and windowed sums are differences of a
per-entity prefix sum. No per-row Python.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ml.features.config import (
    FeatureConfig,
    Float64Array,
    Int64Array,
    PreparedTransactions,
)
from ml.features.registry import AGG_ENTITIES

# The cap of the amount-to-user-mean ratios: a mean of a tiny fraction of a cent would
# overflow them.
MAX_RATIO = 1e12

IntpArray = npt.NDArray[np.intp]


def fraud_rate(fraud: Float64Array, labelled: Float64Array) -> Float64Array:
    """Share of known labels that are fraud; 0 when no label is known yet."""
    out = np.zeros(np.shape(labelled), dtype=np.float64)
    np.divide(fraud, labelled, out=out, where=labelled > 0)
    return out


def fraud_rate_one(fraud: float, labelled: float) -> float:
    """`fraud_rate` of one window in plain floats (the online path)."""
    return fraud / labelled if labelled > 0 else 0.0


def segmented_cumsum(values: Float64Array, pos: Int64Array) -> Float64Array:
    """Inclusive prefix sums restarting at each segment (pos = index in segment).

    A log-step (Hillis-Steele) scan: rounding error stays relative to the segment's
    own total, not to the whole column as with a global cumsum.
    """
    acc = values.astype(np.float64, copy=True)
    top = int(pos.max()) if pos.size else 0
    step = 1
    while step <= top:
        shifted = np.zeros_like(acc)
        shifted[step:] = np.where(pos[step:] >= step, acc[:-step], 0.0)
        acc = acc + shifted
        step *= 2
    return acc


class Timeline:
    """Dense time ranks shared by all entity indexes of one batch computation.

    Window bounds are computed once per distinct timestamp (sorted queries, so
    searchsorted is cache-friendly) and gathered per row by rank.
    """

    def __init__(self, data: PreparedTransactions) -> None:
        self.data = data
        self.ts = data.ts
        order = np.argsort(data.ts, kind="stable")
        ordered = data.ts[order]
        first = np.ones(ordered.shape[0], dtype=bool)
        first[1:] = ordered[1:] != ordered[:-1]
        self.unique: Int64Array = ordered[first]
        self.rank: Int64Array = np.empty(ordered.shape[0], dtype=np.int64)
        self.rank[order] = np.cumsum(first) - 1
        # ranks and "end positions" (<= len(unique)) both fit below `width`
        self.width = int(self.unique.shape[0]) + 2
        self._entities: dict[str, EntityIndex] = {}
        self._bounds: dict[tuple[str, int], Int64Array] = {}

    def window_start(self, width_ns: int) -> Int64Array:
        """Per distinct time u: rank of the first distinct time >= u - width."""
        key = ("start", width_ns)
        if key not in self._bounds:
            self._bounds[key] = np.searchsorted(
                self.unique, self.unique - width_ns, side="left"
            ).astype(np.int64)
        return self._bounds[key]

    def ranks_through(self, offset_ns: int) -> Int64Array:
        """Per distinct time u: how many distinct times are <= u + offset."""
        key = ("through", offset_ns)
        if key not in self._bounds:
            self._bounds[key] = np.searchsorted(
                self.unique, self.unique + offset_ns, side="right"
            ).astype(np.int64)
        return self._bounds[key]

    def entity(self, role: str) -> EntityIndex:
        if role not in self._entities:
            codes = self.data.categorical[role].codes
            self._entities[role] = EntityIndex(codes, self)
        return self._entities[role]


class EntityIndex:
    """Rows of one entity role sorted by (entity, time); rows with no entity excluded.

    Arrays ending in nothing are in sorted order; `rows` maps them to input rows.
    `tie_start[i]` is the first sorted position of i's (entity, timestamp) group,
    so positions [seg_start[i], tie_start[i]) are exactly i's strictly earlier
    events.
    """

    def __init__(self, codes: Int64Array, timeline: Timeline) -> None:
        self.timeline = timeline
        self.n_rows = codes.shape[0]
        valid = np.flatnonzero(codes >= 0)
        key = codes[valid] * timeline.width + timeline.rank[valid]
        order = np.argsort(key, kind="stable")
        self.rows: IntpArray = valid[order]
        self.key: Int64Array = key[order]
        self.code: Int64Array = codes[self.rows]
        self.rank: Int64Array = timeline.rank[self.rows]
        self.ts: Int64Array = timeline.ts[self.rows]
        n = self.rows.shape[0]
        index = np.arange(n, dtype=np.int64)
        seg_first = np.ones(n, dtype=bool)
        seg_first[1:] = self.code[1:] != self.code[:-1]
        tie_first = np.ones(n, dtype=bool)
        tie_first[1:] = self.key[1:] != self.key[:-1]
        self.seg_start: Int64Array = np.maximum.accumulate(
            np.where(seg_first, index, 0)
        )
        self.tie_start: Int64Array = np.maximum.accumulate(
            np.where(tie_first, index, 0)
        )
        self.pos: Int64Array = index - self.seg_start
        self.seg_first = seg_first
        self.seg_last = np.append(seg_first[1:], True) if n else seg_first

    def sorted_values(self, values: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
        return values[self.rows]

    def position_of_rank(self, ranks: Int64Array) -> Int64Array:
        """First sorted position of this entity at or after each rank (per sorted row)."""
        query = self.code * self.timeline.width + ranks
        return np.searchsorted(self.key, query, side="left").astype(np.int64)

    def prefix(self, values_sorted: Float64Array) -> Float64Array:
        return segmented_cumsum(values_sorted, self.pos)

    def range_sum(
        self, prefix: Float64Array, lo: Int64Array, hi: Int64Array
    ) -> Float64Array:
        """Sum over sorted positions [lo, hi) inside each row's own segment."""
        upper = np.where(hi > self.seg_start, prefix[np.maximum(hi - 1, 0)], 0.0)
        lower = np.where(lo > self.seg_start, prefix[np.maximum(lo - 1, 0)], 0.0)
        return np.asarray(upper - lower, dtype=np.float64)

    def scatter(
        self, values_sorted: npt.NDArray[np.generic], fill: float = 0.0
    ) -> Float64Array:
        """Back to input row order; rows without an entity get `fill`."""
        out = np.full(self.n_rows, fill, dtype=np.float64)
        out[self.rows] = values_sorted
        return out


def window_counts_sums(
    index: EntityIndex, amount: Float64Array, windows: tuple[tuple[str, int], ...]
) -> dict[str, tuple[Float64Array, Float64Array]]:
    """{window: (count, amount sum)} over [t - w, t), in sorted order."""
    tl = index.timeline
    prefix = index.prefix(index.sorted_values(amount).astype(np.float64))
    hi = index.tie_start
    out: dict[str, tuple[Float64Array, Float64Array]] = {}
    for name, width_ns in windows:
        lo = index.position_of_rank(tl.window_start(width_ns)[index.rank])
        out[name] = ((hi - lo).astype(np.float64), index.range_sum(prefix, lo, hi))
    return out


def window_mean_features(
    amount: Float64Array, count: Float64Array, total: Float64Array, window: str
) -> dict[str, Float64Array]:
    """The user's mean amount over a window and the amount against it."""
    mean = np.divide(total, count, out=np.zeros(np.shape(total)), where=count > 0)
    with np.errstate(over="ignore"):
        ratio = np.divide(
            amount, mean, out=np.ones(np.shape(total)), where=(count > 0) & (mean > 0)
        )
    return {
        f"user_amount_mean_{window}": mean,
        f"amount_to_user_mean_{window}": np.minimum(ratio, MAX_RATIO),
    }


def window_mean_features_one(
    amount: float, count: float, total: float, window: str
) -> dict[str, float]:
    """`window_mean_features` of one transaction in plain floats (the online path)."""
    mean = total / count if count > 0 else 0.0
    ratio = min(amount / mean, MAX_RATIO) if count > 0 and mean > 0 else 1.0
    return {f"user_amount_mean_{window}": mean, f"amount_to_user_mean_{window}": ratio}


def compute_aggregation(
    data: PreparedTransactions,
    timeline: Timeline,
    config: FeatureConfig,
    wanted: set[str],
) -> dict[str, Float64Array]:
    out: dict[str, Float64Array] = {}
    for entity, role in AGG_ENTITIES:
        names = {
            f"{entity}_{kind}_{w}"
            for w in config.windows
            for kind in ("txn_count", "amount_sum")
        }
        if not (names & wanted):
            continue
        index = timeline.entity(role)
        for window, (count, total) in window_counts_sums(
            index, data.amount, config.window_ns
        ).items():
            out[f"{entity}_txn_count_{window}"] = index.scatter(count)
            out[f"{entity}_amount_sum_{window}"] = index.scatter(total)
    if any(name.startswith("user_amount_mean_") for name in wanted):
        index = timeline.entity("user_id")
        amount = index.sorted_values(data.amount).astype(np.float64)
        for window, (count, total) in window_counts_sums(
            index, data.amount, config.ratio_window_ns
        ).items():
            means = window_mean_features(amount, count, total, window)
            out.update({name: index.scatter(v) for name, v in means.items()})
    for role, prefix, windows in (
        ("merchant_id", "merchant", config.fraud_window_ns),
        ("user_id", "user", config.user_fraud_window_ns),
    ):
        if any(name.startswith(f"{prefix}_fraud_rate_") for name in wanted):
            out.update(_fraud_rates(data, timeline, config, role, prefix, windows))
    return {name: values for name, values in out.items() if name in wanted}


def _fraud_rates(
    data: PreparedTransactions,
    timeline: Timeline,
    config: FeatureConfig,
    role: str,
    prefix: str,
    windows: tuple[tuple[str, int], ...],
) -> dict[str, Float64Array]:
    """Labels of the entity's events at s with s + delay <= t and s < t,
    s >= t-delay-w."""
    assert data.label is not None
    index = timeline.entity(role)
    label = index.sorted_values(data.label).astype(np.float64)
    known = np.concatenate(([0], np.cumsum(~np.isnan(label))))
    fraud = np.concatenate(([0], np.cumsum(label == 1.0)))
    delay = config.label_delay_ns
    # exclusive upper rank: labels at times <= t - delay, never at t itself
    hi_rank = np.minimum(timeline.ranks_through(-delay)[index.rank], index.rank)
    hi = index.position_of_rank(hi_rank)
    out: dict[str, Float64Array] = {}
    for name, width_ns in windows:
        lo_rank = timeline.window_start(delay + width_ns)[index.rank]
        lo = index.position_of_rank(np.minimum(lo_rank, hi_rank))
        labelled = (known[hi] - known[lo]).astype(np.float64)
        n_fraud = (fraud[hi] - fraud[lo]).astype(np.float64)
        out[f"{prefix}_fraud_rate_{name}"] = index.scatter(
            fraud_rate(n_fraud, labelled)
        )
        out[f"{prefix}_labelled_count_{name}"] = index.scatter(labelled)
    return out
