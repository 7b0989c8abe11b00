"""Data drift of live features against a training baseline: PSI, KS and chi-square.

Per feature, one sort of the live column; every statistic then comes from binary searches
of the baseline's few thousand points into it (no pass over the rows per statistic).

- PSI: on the baseline's bins plus one bin for missing values, so a feature going missing
  shows as drift. PSI = sum((c - b) * ln(c / b)) over the bins' shares; a share of 0 is
  replaced by ``EMPTY_BIN_SHARE`` before the sum (Evidently's convention), others unchanged.
- KS (numeric): the two-sample statistic of the baseline's KS sample against the live
  finite values, equal to ``scipy.stats.ks_2samp(sample, live)`` (default method): the
  statistic exactly, the p-value from the same Smirnov distribution when either sample
  exceeds scipy's exact-mode size, and from scipy itself below it (small samples, cheap).
- chi-square (categorical): ``scipy.stats.chi2_contingency`` on the 2 x k table of
  training and live counts per category (and "other"), categories empty in both dropped.

Status per feature: numeric by PSI; categorical by the chi-square p-value (the spec), or by
PSI when ``categorical_test="psi"`` (at large volumes p-values flag negligible shifts).
Overall: the PSI thresholds applied to the mean PSI of all features, raised to WARNING
when any feature is CRITICAL. No live rows: NO_DATA.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from ml.monitoring.baseline import (
    QUANTILES,
    Baseline,
    FeatureBaseline,
    FloatArray,
    sample_grid,
    sorted_finite,
)

Status = Literal["OK", "WARNING", "CRITICAL", "NO_DATA"]
EMPTY_BIN_SHARE = 1e-4
KS_EXACT_MAX_N = 10_000  # scipy's 'auto' method is exact up to this sample size


@dataclass(frozen=True)
class DriftThresholds:
    """Status thresholds: PSI at or above, p-value below."""

    psi_warning: float = 0.1
    psi_critical: float = 0.2
    p_warning: float = 0.05
    p_critical: float = 0.01
    categorical_test: Literal["chi_square", "psi"] = "chi_square"

    def __post_init__(self) -> None:
        if not 0 <= self.psi_warning <= self.psi_critical:
            raise ValueError("0 <= psi_warning <= psi_critical expected")
        if not 0 < self.p_critical <= self.p_warning < 1:
            raise ValueError("0 < p_critical <= p_warning < 1 expected")
        if self.categorical_test not in ("chi_square", "psi"):
            raise ValueError(f"unknown categorical_test {self.categorical_test!r}")

    def psi_status(self, value: float) -> Status:
        if value >= self.psi_critical:
            return "CRITICAL"
        return "WARNING" if value >= self.psi_warning else "OK"

    def p_status(self, p: float) -> Status:
        if p < self.p_critical:
            return "CRITICAL"
        return "WARNING" if p < self.p_warning else "OK"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift; counts are per bin (the baseline's bins, then missing)."""

    name: str
    kind: Literal["numeric", "categorical"]
    status: Status
    count: int
    missing: int
    psi: float | None
    ks_statistic: float | None
    ks_p: float | None
    chi_square: float | None
    chi_square_p: float | None
    bin_labels: tuple[str, ...]
    baseline_counts: tuple[int, ...]
    current_counts: tuple[int, ...]
    baseline_missing_rate: float | None
    current_missing_rate: float | None
    baseline_quantiles: dict[str, float]
    current_quantiles: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("bin_labels", "baseline_counts", "current_counts"):
            out[key] = list(out[key])
        return out


@dataclass(frozen=True)
class DataDrift:
    status: Status
    overall_psi: float | None
    rows: int
    features: tuple[FeatureDrift, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "overall_psi": self.overall_psi,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
        }


def psi(baseline_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float | None:
    """Population stability index of two count vectors over the same bins."""
    base = np.asarray(baseline_counts, dtype=np.float64)
    current = np.asarray(current_counts, dtype=np.float64)
    if base.shape != current.shape:
        raise ValueError("baseline and current counts differ in length")
    if base.sum() <= 0 or current.sum() <= 0:
        return None
    b = base / base.sum()
    c = current / current.sum()
    b[b == 0] = EMPTY_BIN_SHARE
    c[c == 0] = EMPTY_BIN_SHARE
    return float(np.sum((c - b) * np.log(c / b)))


def _common(
    ordered: FloatArray, points: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Both in one dtype without rounding `points` (upcasting the column if need be)."""
    values = np.asarray(points, dtype=np.float64)
    cast = values.astype(ordered.dtype)
    if np.array_equal(cast, values):
        return ordered, cast
    return ordered.astype(np.float64), values


def ks_from_sorted(
    sample: FloatArray,
    ordered: FloatArray,
    grid: tuple[FloatArray, npt.NDArray[np.int64]] | None = None,
) -> tuple[float, float] | None:
    """``ks_2samp(sample, ordered)`` (default method) for finite sorted `ordered`;
    `grid` is ``sample_grid(sample)`` when the caller keeps it."""
    from scipy import stats  # loaded on first use: see the package docstring

    m, n = int(sample.size), int(ordered.size)
    if m == 0 or n == 0:
        return None
    if max(m, n) <= KS_EXACT_MAX_N:
        result = stats.ks_2samp(sample, ordered)
        return float(result.statistic), float(result.pvalue)
    points, below_or_at = sample_grid(sample) if grid is None else grid
    ordered, points = _common(ordered, points)
    current_le = np.searchsorted(ordered, points, side="right")
    current_lt = np.searchsorted(ordered, points, side="left")
    below = np.concatenate([[0], below_or_at[:-1]])
    # at each sample value, and just before it (the last live value in the gap)
    at = below_or_at / m - current_le / n
    before = below / m - current_lt / n
    high = max(float(at.max()), float(before.max()))
    low = float(np.clip(-min(float(at.min()), float(before.min())), 0, 1))
    d = max(high, low)
    big, small = sorted([float(m), float(n)], reverse=True)
    en = big * small / (big + small)
    p = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))
    return d, p


def chi_square(
    baseline_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float] | None:
    """``chi2_contingency`` on the 2 x k table, columns empty in both rows dropped."""
    from scipy import stats  # loaded on first use: see the package docstring

    table = np.array([baseline_counts, current_counts], dtype=np.int64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] == 0 or (table.sum(axis=1) == 0).any():
        return None
    result = stats.chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def bin_labels(feature: FeatureBaseline) -> tuple[str, ...]:
    """Readable labels of a feature's bins, the missing bin last."""
    if feature.kind == "categorical":
        return (*(f"= {_fmt(c)}" for c in feature.categories), "other", "missing")
    e = feature.edges
    if not e:
        return ("all", "missing")
    inner = [f"[{_fmt(a)}, {_fmt(b)})" for a, b in zip(e[:-1], e[1:], strict=True)]
    return (f"< {_fmt(e[0])}", *inner, f">= {_fmt(e[-1])}", "missing")


def _quantiles_of_sorted(ordered: FloatArray) -> dict[str, float]:
    n = ordered.size
    if n == 0:
        return {}
    position = np.array([q for _, q in QUANTILES]) * (n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    a = ordered[low].astype(np.float64)
    b = ordered[high].astype(np.float64)
    values = a + (b - a) * (position - low)
    return {name: float(v) for (name, _), v in zip(QUANTILES, values, strict=True)}


def feature_drift(
    feature: FeatureBaseline,
    column: npt.ArrayLike,
    thresholds: DriftThresholds = DriftThresholds(),  # noqa: B008 (frozen)
) -> FeatureDrift:
    """Drift of one live column (NaN/inf = missing) against its baseline."""
    ordered, count = sorted_finite(column)
    n = ordered.size
    ks: tuple[float, float] | None = None
    chi: tuple[float, float] | None = None
    if feature.kind == "numeric":
        col, edges = _common(ordered, feature.edges)
        below = np.searchsorted(col, edges, side="left")
        counts = np.diff(np.concatenate([[0], below, [n]]))
        ks = ks_from_sorted(feature.sample, ordered, feature.grid)
    else:
        col, categories = _common(ordered, feature.categories)
        hits = np.searchsorted(col, categories, side="right") - np.searchsorted(
            col, categories, side="left"
        )
        counts = np.concatenate([hits, [n - int(hits.sum())]])
        chi = chi_square(feature.bin_counts, counts)
    current = (*(int(c) for c in counts), count - n)
    base = (*feature.bin_counts, feature.missing)
    value = psi(base, current)
    status: Status = "NO_DATA"
    if count and chi is not None and thresholds.categorical_test == "chi_square":
        status = thresholds.p_status(chi[1])
    elif count and value is not None:
        status = thresholds.psi_status(value)
    return FeatureDrift(
        name=feature.name,
        kind=feature.kind,
        status=status,
        count=count,
        missing=count - n,
        psi=value,
        ks_statistic=None if ks is None else ks[0],
        ks_p=None if ks is None else ks[1],
        chi_square=None if chi is None else chi[0],
        chi_square_p=None if chi is None else chi[1],
        bin_labels=bin_labels(feature),
        baseline_counts=base,
        current_counts=current,
        baseline_missing_rate=feature.missing_rate,
        current_missing_rate=(count - n) / count if count else None,
        baseline_quantiles=dict(feature.quantiles),
        current_quantiles=_quantiles_of_sorted(ordered),
    )


def _columns(
    baseline: Baseline, current: Mapping[str, npt.ArrayLike] | npt.ArrayLike
) -> Sequence[npt.ArrayLike]:
    if isinstance(current, Mapping):
        absent = [name for name in baseline.names if name not in current]
        if absent:
            raise KeyError(f"current data lacks features {absent}")
        return [current[name] for name in baseline.names]
    matrix = np.asarray(current)
    if matrix.ndim != 2 or matrix.shape[1] != len(baseline.features):
        raise ValueError(
            f"matrix of shape {matrix.shape} for {len(baseline.features)} features"
        )
    return [matrix[:, j] for j in range(matrix.shape[1])]


def compute_drift(
    baseline: Baseline,
    current: Mapping[str, npt.ArrayLike] | npt.ArrayLike,
    thresholds: DriftThresholds = DriftThresholds(),  # noqa: B008 (frozen)
) -> DataDrift:
    """Drift of live features, given by name or as an (n, features) matrix in the
    baseline's order (column-major is read fastest)."""
    columns = _columns(baseline, current)
    sizes = {int(np.asarray(c).shape[0]) for c in columns}
    if len(sizes) > 1:
        raise ValueError(f"current columns differ in length: {sorted(sizes)}")
    rows = sizes.pop() if sizes else 0
    features = tuple(
        feature_drift(f, c, thresholds)
        for f, c in zip(baseline.features, columns, strict=True)
    )
    values = [f.psi for f in features if f.psi is not None]
    if rows == 0 or not values:
        return DataDrift("NO_DATA", None, rows, features)
    overall = float(np.mean(values))
    status = thresholds.psi_status(overall)
    if status == "OK" and any(f.status == "CRITICAL" for f in features):
        status = "WARNING"
    return DataDrift(status, overall, rows, features)
