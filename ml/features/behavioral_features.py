"""The user's habits: activity history, first use of a device/country/merchant/...
and how many distinct devices and countries they used recently.

Missing values (no device on the transaction) are never "new" and never counted.
"""

from __future__ import annotations

import numpy as np

from ml.features.aggregation_features import EntityIndex, Timeline
from ml.features.config import (
    FeatureConfig,
    Float64Array,
    Int64Array,
    PreparedTransactions,
)
from ml.features.registry import DISTINCT_ROLES, NEW_VALUE_ROLES

# seconds_since_last_txn when the user has no earlier transaction (~31.7 years):
# larger than any real gap, keeps the column finite for every model type.
NO_PREVIOUS_SECONDS = 1e9
_NS_PER_S = 1e9


def activity_features(
    ts_ns: Int64Array, prev_ts_ns: Int64Array, n_prev: Float64Array
) -> dict[str, Float64Array]:
    """Shared by batch and online: gap to the previous earlier txn, and txn count."""
    has = n_prev > 0
    gap = np.where(has, ts_ns - np.where(has, prev_ts_ns, ts_ns), 0)
    return {
        "user_txn_count": np.asarray(n_prev, dtype=np.float64),
        "seconds_since_last_txn": np.where(
            has, gap.astype(np.float64) / _NS_PER_S, NO_PREVIOUS_SECONDS
        ),
    }


def activity_features_one(
    t_ns: int, prev_ts_ns: int, n_prev: float
) -> dict[str, float]:
    """`activity_features` for one transaction in plain numbers (the online path)."""
    return {
        "user_txn_count": float(n_prev),
        "seconds_since_last_txn": (
            float(t_ns - prev_ts_ns) / _NS_PER_S if n_prev > 0 else NO_PREVIOUS_SECONDS
        ),
    }


def compute_behavioral(
    data: PreparedTransactions,
    timeline: Timeline,
    config: FeatureConfig,
    wanted: set[str],
) -> dict[str, Float64Array]:
    index = timeline.entity("user_id")
    n_prev = (index.tie_start - index.seg_start).astype(np.float64)
    prev_ts = index.ts[np.maximum(index.tie_start - 1, 0)]
    out = {
        name: index.scatter(values)
        for name, values in activity_features(index.ts, prev_ts, n_prev).items()
    }
    users = data.categorical["user_id"].codes
    pairs: dict[str, UserValueEvents] = {}

    def events(role: str) -> UserValueEvents:
        if role not in pairs:
            pairs[role] = UserValueEvents(timeline, users, data.categorical[role].codes)
        return pairs[role]

    for role, suffix, _ in NEW_VALUE_ROLES:
        if f"is_new_{suffix}" in wanted:
            out[f"is_new_{suffix}"] = events(role).first_use()
    for role, noun in DISTINCT_ROLES:
        for window, width_ns in config.distinct_window_ns:
            name = f"user_distinct_{noun}_{window}"
            if name in wanted:
                out[name] = index.scatter(events(role).distinct_count(index, width_ns))
    return {name: values for name, values in out.items() if name in wanted}


def _dense(values: Int64Array) -> tuple[Int64Array, Int64Array]:
    """Dense codes 0..k-1 in sorted value order, and the k sorted distinct values."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.ones(ordered.shape[0], dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    codes = np.empty(ordered.shape[0], dtype=np.int64)
    codes[order] = np.cumsum(first) - 1
    return codes, ordered[first]


class UserValueEvents:
    """Distinct (user, value, time) events of one role, e.g. who used which device.

    Sorted by (pair, time), so each pair's first event is its first use and the
    next event of the same pair is its next use.
    """

    def __init__(self, timeline: Timeline, users: Int64Array, values: Int64Array):
        self.timeline = timeline
        self.rows = np.flatnonzero(values >= 0)
        n_values = int(values.max()) + 1 if self.rows.size else 1
        self.pair, distinct = _dense(users[self.rows] * n_values + values[self.rows])
        self.pair_user = distinct // n_values
        self.pair_value = distinct % n_values
        width = timeline.width
        keys = np.sort(self.pair * width + timeline.rank[self.rows])
        keep = np.ones(keys.shape[0], dtype=bool)
        keep[1:] = keys[1:] != keys[:-1]
        keys = keys[keep]
        self.ev_pair = keys // width
        self.ev_rank = keys % width
        self.ev_user = self.pair_user[self.ev_pair]
        pair_first = np.ones(keys.shape[0], dtype=bool)
        pair_first[1:] = self.ev_pair[1:] != self.ev_pair[:-1]
        self.first_rank = self.ev_rank[pair_first]  # indexed by pair code
        self.next_rank = np.full(keys.shape[0], -1, dtype=np.int64)  # -1: none
        self.next_rank[:-1] = np.where(pair_first[1:], -1, self.ev_rank[1:])

    def first_use(self) -> Float64Array:
        """1 where no earlier time has the same (user, value) pair."""
        out = np.zeros(self.timeline.ts.shape[0], dtype=np.float64)
        rank = self.timeline.rank[self.rows]
        out[self.rows] = rank == self.first_rank[self.pair]
        return out

    def distinct_count(self, users: EntityIndex, width_ns: int) -> Float64Array:
        """Distinct values per user with an event in [t - w, t), in `users` order.

        Event e at s "holds" its value for query times in (s, min(next use of the
        pair, s + w)]; the count at t is the number of the user's intervals holding
        t = (#starts < t) - (#ends < t), found by searchsorted on (user, rank) keys.
        """
        width = self.timeline.width
        through = self.timeline.ranks_through(width_ns)[self.ev_rank]
        end = np.where(
            self.next_rank >= 0, np.minimum(self.next_rank + 1, through), through
        )
        starts = np.sort(self.ev_user * width + self.ev_rank)
        ends = np.sort(self.ev_user * width + end)
        n_started = np.searchsorted(starts, users.key, side="left")
        n_ended = np.searchsorted(ends, users.key, side="right")
        return (n_started - n_ended).astype(np.float64)
