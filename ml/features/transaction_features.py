"""Amount features, including the amount against the user's own earlier amounts.

The user's history enters only through the moments (n, s1, s2) of
`amount - shift` over strictly earlier transactions, where `shift` is the user's
first amount (shifting keeps the variance formula from cancelling badly). Batch
derives the moments from prefix sums, online from its stored running totals; both
then call `amount_features`, the single definition of the formulas.
"""

from __future__ import annotations

import math

import numpy as np

from ml.features.aggregation_features import MAX_RATIO, Timeline
from ml.features.config import FeatureConfig, Float64Array, PreparedTransactions

MIN_STD = 1e-6  # below this the user's amounts count as constant: z-score 0
# With amounts capped (config.MAX_AMOUNT), MAX_RATIO and MIN_STD, every feature here
# stays finite.


def amount_features(
    amount: Float64Array,
    n: Float64Array,
    s1: Float64Array,
    s2: Float64Array,
    shift: Float64Array,
) -> dict[str, Float64Array]:
    """Transaction-group features from the amount and the user's past moments."""
    zeros = np.zeros(np.shape(amount), dtype=np.float64)
    has = n > 0
    mean_shifted = np.divide(s1, n, out=zeros.copy(), where=has)
    mean = np.where(has, shift + mean_shifted, 0.0)
    var = np.divide(s2 - s1 * mean_shifted, n - 1.0, out=zeros.copy(), where=n > 1)
    std = np.sqrt(np.maximum(var, 0.0))
    zscore = np.divide(
        amount - mean, std, out=zeros.copy(), where=(n > 1) & (std > MIN_STD)
    )
    with np.errstate(over="ignore"):
        ratio = np.divide(
            amount, mean, out=np.ones_like(zeros), where=has & (mean > 0.0)
        )
    ratio = np.minimum(ratio, MAX_RATIO)
    cents_total = np.rint(amount * 100.0)
    cents = np.mod(cents_total, 100.0)
    return {
        "amount": np.asarray(amount, dtype=np.float64),
        "log_amount": np.log1p(amount),
        "user_mean_amount": mean,
        "amount_to_user_mean": ratio,
        "amount_zscore_user": zscore,
        "is_round_amount": (np.mod(cents_total, 1000.0) == 0.0).astype(np.float64),
        "amount_cents": cents,
        "has_cents": (cents != 0.0).astype(np.float64),
    }


def amount_features_one(
    amount: float, n: float, s1: float, s2: float, shift: float
) -> dict[str, float]:
    """`amount_features` for one transaction in plain floats, for the online path,
    where numpy's per-call overhead on one-element arrays cost more than the formulas
    (tests check that both agree)."""
    mean_shifted = s1 / n if n > 0 else 0.0
    mean = shift + mean_shifted if n > 0 else 0.0
    var = (s2 - s1 * mean_shifted) / (n - 1.0) if n > 1 else 0.0
    std = math.sqrt(max(var, 0.0))
    cents_total = float(round(amount * 100.0))  # half to even, as np.rint
    cents = cents_total % 100.0
    return {
        "amount": float(amount),
        "log_amount": math.log1p(amount),
        "user_mean_amount": mean,
        "amount_to_user_mean": (
            min(amount / mean, MAX_RATIO) if n > 0 and mean > 0.0 else 1.0
        ),
        "amount_zscore_user": (amount - mean) / std if n > 1 and std > MIN_STD else 0.0,
        "is_round_amount": float(cents_total % 1000.0 == 0.0),
        "amount_cents": cents,
        "has_cents": float(cents != 0.0),
    }


def compute_transaction(
    data: PreparedTransactions,
    timeline: Timeline,
    config: FeatureConfig,
    wanted: set[str],
) -> dict[str, Float64Array]:
    index = timeline.entity("user_id")
    amount = index.sorted_values(data.amount).astype(np.float64)
    shift = amount[index.seg_start]
    shifted = amount - shift
    n = (index.tie_start - index.seg_start).astype(np.float64)
    s1 = index.range_sum(index.prefix(shifted), index.seg_start, index.tie_start)
    s2 = index.range_sum(
        index.prefix(shifted * shifted), index.seg_start, index.tie_start
    )
    features = amount_features(amount, n, s1, s2, shift)
    return {
        name: index.scatter(values)
        for name, values in features.items()
        if name in wanted
    }
