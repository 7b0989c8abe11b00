"""A model's training feature baseline: what drift checks compare live features against.

Built once at training time from the training feature matrix and stored with the model, so
it survives the feature set's deletion. Per feature:

- numeric: interior bin edges at the training deciles (values taken from the data, so an
  edge is a value the column holds; equal deciles from ties merge into one edge), bins
  ``(-inf, e1), [e1, e2), ..., [ek, +inf)`` with their training counts; a constant column
  gets the bins below, at and above its value. Plus quantiles and a KS sample: the sorted
  training values when there are at most ``ks_sample`` of them, otherwise that many evenly
  spaced order statistics (deterministic, and closer to the training distribution than a
  random draw of the same size).
- categorical: the category values (float codes) and their counts; a live value outside
  them counts as "other". A column is categorical when named in ``categorical``, or (when
  that is None) when its training values are all integers and at most ``max_categories``
  distinct.

Missing means NaN or +-inf, for every statistic.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FORMAT_VERSION = 1
DEFAULT_BINS = 10
DEFAULT_KS_SAMPLE = 10_000
DEFAULT_MAX_CATEGORIES = 20
MAX_FORCED_CATEGORIES = 1_000
QUANTILES: tuple[tuple[str, float], ...] = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)

Kind = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True, eq=False)
class FeatureBaseline:
    """One feature's training statistics (see the module docstring for the bins)."""

    name: str
    kind: Kind
    count: int
    missing: int
    edges: tuple[float, ...] = ()
    categories: tuple[float, ...] = ()
    bin_counts: tuple[int, ...] = ()
    quantiles: dict[str, float] = field(default_factory=dict)
    sample: FloatArray = field(default_factory=lambda: np.empty(0, np.float32))

    @property
    def valid(self) -> int:
        return self.count - self.missing

    @property
    def missing_rate(self) -> float | None:
        return self.missing / self.count if self.count else None

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.sample.dtype

    @cached_property
    def grid(self) -> tuple[FloatArray, npt.NDArray[np.int64]]:
        """(distinct KS sample values, count of sample values <= each)."""
        return sample_grid(self.sample)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "bin_counts": list(self.bin_counts),
            "quantiles": dict(self.quantiles),
        }
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
            out["sample_dtype"] = self.sample.dtype.str
            out["sample"] = base64.b64encode(self.sample.tobytes()).decode("ascii")
        else:
            out["categories"] = list(self.categories)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureBaseline:
        kind = data["kind"]
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"feature {data.get('name')!r}: unknown kind {kind!r}")
        sample = np.empty(0, np.float32)
        if kind == "numeric":
            dtype = np.dtype(data["sample_dtype"])
            if dtype.kind != "f":
                raise ValueError(f"feature {data['name']!r}: sample_dtype {dtype}")
            raw = base64.b64decode(data["sample"])
            sample = np.frombuffer(raw, dtype=dtype).copy()
        feature = cls(
            name=str(data["name"]),
            kind=kind,
            count=int(data["count"]),
            missing=int(data["missing"]),
            edges=tuple(float(e) for e in data.get("edges", ())),
            categories=tuple(float(c) for c in data.get("categories", ())),
            bin_counts=tuple(int(c) for c in data["bin_counts"]),
            quantiles={str(k): float(v) for k, v in data["quantiles"].items()},
            sample=sample,
        )
        expected = len(feature.edges if kind == "numeric" else feature.categories) + 1
        if len(feature.bin_counts) != expected:
            raise ValueError(
                f"feature {feature.name!r}: {expected} bin counts expected"
            )
        return feature


@dataclass(frozen=True, eq=False)
class Baseline:
    """Every feature's baseline, in the model's feature order."""

    features: tuple[FeatureBaseline, ...]
    rows: int

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureBaseline:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Baseline:
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"baseline format version {data.get('version')!r}")
        return cls(
            features=tuple(FeatureBaseline.from_dict(f) for f in data["features"]),
            rows=int(data["rows"]),
        )


def sample_grid(sample: FloatArray) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """(distinct values of a sorted sample, count of sample values <= each)."""
    values, counts = np.unique(sample, return_counts=True)
    return values, np.cumsum(counts, dtype=np.int64)


def sorted_finite(column: npt.ArrayLike) -> tuple[FloatArray, int]:
    """(sorted finite values, count of all values): NaN and +-inf are missing."""
    array = np.asarray(column)
    if array.ndim != 1:
        raise ValueError("a feature column must be one-dimensional")
    if array.dtype.kind != "f":
        array = array.astype(np.float64)
    ordered = np.sort(array)  # NaN sorts last
    low = int(np.searchsorted(ordered, -np.inf, side="right"))
    high = int(np.searchsorted(ordered, np.inf, side="left"))
    return ordered[low:high], int(array.size)


def _distinct(ordered: FloatArray) -> FloatArray:
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _quantiles(ordered: FloatArray) -> dict[str, float]:
    if ordered.size == 0:
        return {}
    values = np.quantile(ordered, [q for _, q in QUANTILES])
    return {name: float(v) for (name, _), v in zip(QUANTILES, values, strict=True)}


def _numeric(
    name: str, ordered: FloatArray, count: int, bins: int, ks: int
) -> FeatureBaseline:
    n = ordered.size
    edges = ordered[:0]
    if n:
        # the smallest value with at least i/bins of the data at or below it, in integers
        at = (np.arange(1, bins) * n + bins - 1) // bins - 1
        edges = _distinct(ordered[at])
        if ordered[0] == ordered[-1]:
            above = np.nextafter(ordered[:1], np.asarray(np.inf, ordered.dtype))
            edges = np.concatenate([ordered[:1], above])
    below = np.searchsorted(ordered, edges, side="left")
    counts = np.diff(np.concatenate([[0], below, [n]]))
    sample = ordered
    if n > ks:
        sample = ordered[((np.arange(ks) + 0.5) * (n / ks)).astype(np.int64)]
    return FeatureBaseline(
        name=name,
        kind="numeric",
        count=count,
        missing=count - n,
        edges=tuple(float(e) for e in edges),
        bin_counts=tuple(int(c) for c in counts),
        quantiles=_quantiles(ordered),
        sample=np.ascontiguousarray(sample),
    )


def _categorical(name: str, ordered: FloatArray, count: int) -> FeatureBaseline:
    categories = _distinct(ordered)
    low = np.searchsorted(ordered, categories, side="left")
    high = np.searchsorted(ordered, categories, side="right")
    return FeatureBaseline(
        name=name,
        kind="categorical",
        count=count,
        missing=count - ordered.size,
        categories=tuple(float(c) for c in categories),
        bin_counts=(*(int(c) for c in high - low), 0),
        quantiles=_quantiles(ordered),
    )


def _is_categorical(ordered: FloatArray, limit: int) -> bool:
    if ordered.size == 0 or not np.all(ordered == np.round(ordered)):
        return False
    return bool(_distinct(ordered).size <= limit)


def build_baseline(
    matrix: npt.ArrayLike,
    names: Sequence[str],
    *,
    categorical: Collection[str] | None = None,
    bins: int = DEFAULT_BINS,
    ks_sample: int = DEFAULT_KS_SAMPLE,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
) -> Baseline:
    """The baseline of an (n, len(names)) training feature matrix (NaN = missing)."""
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise ValueError(f"matrix of shape {array.shape} for {len(names)} names")
    if len(set(names)) != len(names):
        raise ValueError("feature names repeat")
    if bins < 2 or ks_sample < 1 or max_categories < 1:
        raise ValueError("bins >= 2, ks_sample >= 1 and max_categories >= 1 expected")
    unknown = set(categorical or ()) - set(names)
    if unknown:
        raise ValueError(f"categorical names not in the matrix: {sorted(unknown)}")
    features = []
    for j, name in enumerate(names):
        ordered, count = sorted_finite(array[:, j])
        if categorical is None:
            is_categorical = _is_categorical(ordered, max_categories)
        else:
            is_categorical = name in categorical
            if is_categorical and _distinct(ordered).size > MAX_FORCED_CATEGORIES:
                raise ValueError(
                    f"feature {name!r}: over {MAX_FORCED_CATEGORIES} categories"
                )
        if is_categorical:
            features.append(_categorical(name, ordered, count))
        else:
            features.append(_numeric(name, ordered, count, bins, ks_sample))
    return Baseline(features=tuple(features), rows=int(array.shape[0]))
