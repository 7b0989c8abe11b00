"""A model's stored test rows turned into what fraud teams read: curves, the confusion
matrix at the threshold, a reliability curve, and precision@k per day.

Precision@k per day follows the fraud-detection handbook (Le Borgne et al.): investigators
check k alerts a day, so each day's k highest-scored transactions (or, for card/user
precision, the k users with the highest score that day) count, and the hits are divided
by k even on a day with fewer candidates. Ties are broken by input order (transactions)
or by user id (users), so the result does not depend on the sort algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.training.metrics import evaluate

DAY_NS = 86_400 * 1_000_000_000
DEFAULT_K = 100
DEFAULT_BINS = 10


@dataclass(frozen=True)
class DailyPrecision:
    """Precision@k of each day (UTC) that has test rows, and their mean."""

    k: int
    days: list[str]  # ISO dates
    precision: list[float]
    candidates: list[int]  # transactions (or users) scored that day

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.precision)) if self.precision else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "mean": self.mean,
            "per_day": [
                {"day": d, "precision": p, "candidates": c}
                for d, p, c in zip(
                    self.days, self.precision, self.candidates, strict=True
                )
            ],
        }


def _day_index(timestamps_ns: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    return np.floor_divide(np.asarray(timestamps_ns, dtype=np.int64), DAY_NS)


def _iso_days(days: npt.NDArray[np.int64]) -> list[str]:
    return [str(d) for d in days.astype("datetime64[D]")]


def _top_k_per_group(
    group: npt.NDArray[np.int64],
    scores: npt.NDArray[np.float64],
    hits: npt.NDArray[np.int64],
    k: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(groups, hits among each group's top k by score, rows per group); ties keep
    the order the rows come in (lexsort is stable)."""
    order = np.lexsort((-scores, group))
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, g.size])
    rank = np.arange(g.size) - np.repeat(starts, sizes)
    top = rank < k
    counted = np.bincount(
        np.repeat(np.arange(starts.size), sizes)[top],
        weights=hits[order][top],
        minlength=starts.size,
    )
    return g[starts], counted.astype(np.int64), sizes.astype(np.int64)


def precision_at_k_per_day(
    labels: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    timestamps_ns: npt.NDArray[Any],
    k: int = DEFAULT_K,
) -> DailyPrecision:
    """Per day, the share of frauds among the k highest-scored transactions."""
    if k < 1:
        raise ValueError("k must be at least 1")
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size == 0:
        return DailyPrecision(k, [], [], [])
    days, hits, sizes = _top_k_per_group(_day_index(timestamps_ns), s, y, k)
    return DailyPrecision(
        k, _iso_days(days), (hits / k).tolist(), [int(n) for n in sizes]
    )


def user_precision_at_k_per_day(
    labels: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    timestamps_ns: npt.NDArray[Any],
    user_ids: npt.NDArray[Any],
    k: int = DEFAULT_K,
) -> DailyPrecision:
    """Per day, users ranked by their highest score that day: the share of the top k
    that had at least one fraud that day (the handbook's card precision@k)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size == 0:
        return DailyPrecision(k, [], [], [])
    day = _day_index(timestamps_ns)
    _, user = np.unique(np.asarray(user_ids).astype(str), return_inverse=True)
    # one row per (day, user): the user's highest score and whether any row was fraud
    order = np.lexsort((user, day))
    d, u = day[order], user[order]
    starts = np.flatnonzero(np.r_[True, (d[1:] != d[:-1]) | (u[1:] != u[:-1])])
    max_score = np.maximum.reduceat(s[order], starts)
    any_fraud = np.maximum.reduceat(y[order], starts)
    days, hits, sizes = _top_k_per_group(d[starts], max_score, any_fraud, k)
    return DailyPrecision(
        k, _iso_days(days), (hits / k).tolist(), [int(n) for n in sizes]
    )


def calibration_curve(
    labels: npt.NDArray[Any], scores: npt.NDArray[Any], bins: int = DEFAULT_BINS
) -> dict[str, list[float] | list[int]]:
    """Reliability bins of equal width over [0, 1] (the last closed): each non-empty
    bin's mean score, observed fraud rate and row count."""
    y = np.asarray(labels, dtype=np.float64).ravel()
    s = np.clip(np.asarray(scores, dtype=np.float64).ravel(), 0.0, 1.0)
    which = np.minimum((s * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    score_sum = np.bincount(which, weights=s, minlength=bins)
    fraud_sum = np.bincount(which, weights=y, minlength=bins)
    full = count > 0
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {
        "bin_lower": edges[:-1][full].tolist(),
        "bin_upper": edges[1:][full].tolist(),
        "mean_score": (score_sum[full] / count[full]).tolist(),
        "fraud_rate": (fraud_sum[full] / count[full]).tolist(),
        "count": [int(c) for c in count[full]],
    }


def precision_metrics(
    labels: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    timestamps_ns: npt.NDArray[Any],
    user_ids: npt.NDArray[Any],
    k: int = DEFAULT_K,
) -> dict[str, float | None]:
    """The model-metrics additions: ``precision_at_{k}`` and ``user_precision_at_{k}``,
    each the mean over the test days."""
    daily = precision_at_k_per_day(labels, scores, timestamps_ns, k)
    users = user_precision_at_k_per_day(labels, scores, timestamps_ns, user_ids, k)
    return {f"precision_at_{k}": daily.mean, f"user_precision_at_{k}": users.mean}


def evaluation_report(
    labels: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    timestamps_ns: npt.NDArray[Any],
    user_ids: npt.NDArray[Any],
    threshold: float,
    k: int = DEFAULT_K,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """Everything ``GET /models/{id}/evaluation`` shows, from the stored test rows."""
    base = evaluate(labels, scores, threshold)
    return {
        "rows": base["support"],
        "positives": base["positives"],
        "threshold": float(threshold),
        "roc_curve": base["roc_curve"],
        "pr_curve": base["pr_curve"],
        "confusion_matrix": base["confusion_matrix"],
        "calibration": calibration_curve(labels, scores, bins),
        "precision_at_k": precision_at_k_per_day(
            labels, scores, timestamps_ns, k
        ).to_dict(),
        "user_precision_at_k": user_precision_at_k_per_day(
            labels, scores, timestamps_ns, user_ids, k
        ).to_dict(),
    }
