"""Per-group confusion counts and rates, and the four disparity metrics computed from
them, with the same definitions as Fairlearn's ``MetricFrame`` rates,
``demographic_parity_difference``, ``equalized_odds_difference`` and
``demographic_parity_ratio`` (between groups, worst case).

One difference: a rate whose denominator is zero (TPR of a group with no positive
label, FPR of one with no negative) is undefined here (NaN) and left out of the
differences, where Fairlearn reports it as 0.0 and counts it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# cells of a group's confusion counts: label * 2 + prediction
TN, FP, FN, TP = 0, 1, 2, 3

DEMOGRAPHIC_PARITY = "demographic_parity_diff"
EQUALIZED_ODDS = "equalized_odds_diff"
DISPARATE_IMPACT = "disparate_impact"
FPR_PARITY = "fpr_parity_diff"
METRICS = (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS, DISPARATE_IMPACT, FPR_PARITY)
# a difference is a violation above its threshold; disparate impact below its own
LOWER_IS_WORSE = frozenset({DISPARATE_IMPACT})


def confusion_by_group(
    codes: npt.ArrayLike, n_groups: int, y_true: npt.ArrayLike, y_pred: npt.ArrayLike
) -> Counts:
    """(n_groups, 4) counts of TN, FP, FN, TP; rows with code -1 are left out.
    Labels and predictions are 0/1 (any non-zero counts as 1)."""
    g = np.asarray(codes, dtype=np.int64)
    y = np.asarray(y_true) != 0
    p = np.asarray(y_pred) != 0
    key = g * 4 + y * 2 + p
    counted = np.bincount(key[g >= 0], minlength=n_groups * 4)
    return counted[: n_groups * 4].reshape(n_groups, 4).astype(np.int64)


@dataclass(frozen=True)
class Rates:
    """Per group (last axis): row count, selection rate, TPR, FPR. Leading axes, when
    present, are bootstrap replicates."""

    count: Counts
    selection_rate: Floats
    tpr: Floats
    fpr: Floats


def rates(confusion: Counts) -> Rates:
    """Rates from counts of shape (..., groups, 4); NaN where a denominator is 0."""
    c = np.asarray(confusion, dtype=np.float64)
    count = c.sum(axis=-1)
    positives = c[..., FN] + c[..., TP]
    negatives = c[..., TN] + c[..., FP]
    with np.errstate(divide="ignore", invalid="ignore"):
        selection = (c[..., FP] + c[..., TP]) / count
        tpr = c[..., TP] / positives
        fpr = c[..., FP] / negatives
    return Rates(count.astype(np.int64), selection, tpr, fpr)


def _spread(values: Floats) -> Floats:
    """max - min over groups (last axis), NaN groups left out; NaN when none is left."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        out: Floats = np.nanmax(values, axis=-1) - np.nanmin(values, axis=-1)
    return out


def _ratio(values: Floats) -> Floats:
    """min / max over groups; 1.0 when no group is selected at all (equal treatment)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low = np.nanmin(values, axis=-1)
        high = np.nanmax(values, axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out: Floats = np.where(
                high > 0, low / high, np.where(high == 0, 1.0, np.nan)
            )
    return out


def disparities(r: Rates) -> dict[str, Floats]:
    """The four metrics over the groups of ``r`` (arrays: one value per replicate)."""
    tpr_spread = _spread(r.tpr)
    fpr_spread = _spread(r.fpr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        odds = np.fmax(tpr_spread, fpr_spread)  # NaN only when both are
    return {
        DEMOGRAPHIC_PARITY: _spread(r.selection_rate),
        EQUALIZED_ODDS: odds,
        DISPARATE_IMPACT: _ratio(r.selection_rate),
        FPR_PARITY: fpr_spread,
    }


def bootstrap_intervals(
    confusion: Counts,
    *,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of the four metrics: each group's rows are resampled with
    replacement at its own size (stratified), drawn as one multinomial over its four
    confusion cells per replicate; undefined replicates are left out."""
    c = np.asarray(confusion, dtype=np.int64)
    rng = np.random.default_rng(seed)
    drawn = np.zeros((replicates, *c.shape), dtype=np.int64)
    for g, cells in enumerate(c):
        n = int(cells.sum())
        if n:
            drawn[:, g, :] = rng.multinomial(n, cells / n, size=replicates)
    values = disparities(rates(drawn))
    tail = (1.0 - level) / 2.0 * 100.0
    out: dict[str, tuple[float, float]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, v in values.items():
            low, high = np.nanpercentile(v, [tail, 100.0 - tail])
            out[name] = (float(low), float(high))
    return out


@dataclass(frozen=True)
class Level:
    """A metric's two thresholds: beyond ``warning`` it warns, beyond ``critical`` it
    is critical (above for the differences, below for disparate impact)."""

    warning: float
    critical: float


# four-fifths rule for disparate impact; the differences as fractions of the rate scale
DEFAULT_THRESHOLDS: Mapping[str, Level] = {
    DEMOGRAPHIC_PARITY: Level(warning=0.1, critical=0.2),
    EQUALIZED_ODDS: Level(warning=0.1, critical=0.2),
    DISPARATE_IMPACT: Level(warning=0.8, critical=0.6),
    FPR_PARITY: Level(warning=0.05, critical=0.1),
}


def metric_status(metric: str, value: float, level: Level) -> str:
    """OK, WARNING or CRITICAL: strictly beyond a threshold is beyond it."""
    if metric in LOWER_IS_WORSE:
        beyond = [value < level.critical, value < level.warning]
    else:
        beyond = [value > level.critical, value > level.warning]
    return "CRITICAL" if beyond[0] else "WARNING" if beyond[1] else "OK"
