"""Training baselines: bins, categories, KS sample, missing values, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ml.monitoring import Baseline, build_baseline
from tests.support.fresh_process import loaded_after


def _one(column: np.ndarray, **kwargs: object) -> Baseline:
    return build_baseline(column.reshape(-1, 1), ["x"], **kwargs)  # type: ignore[arg-type]


def test_numeric_bins_sit_on_training_deciles() -> None:
    feature = _one(np.arange(1000, dtype=np.float32)).feature("x")
    assert feature.kind == "numeric"
    assert feature.edges == tuple(float(v) for v in range(99, 900, 100))
    assert feature.bin_counts == (99, *([100] * 8), 101)
    assert feature.missing == 0 and feature.count == 1000
    assert feature.quantiles["p50"] == pytest.approx(499.5)


def test_tied_deciles_merge_into_one_edge() -> None:
    rng = np.random.default_rng(1)
    values = np.concatenate([np.zeros(7000), rng.uniform(1, 2, 3000)]).astype(
        np.float32
    )
    feature = _one(values).feature("x")
    assert feature.edges[0] == 0.0
    assert (
        len(set(feature.edges)) == len(feature.edges) == 3
    )  # 0, then the 8th and 9th deciles
    assert feature.bin_counts[0] == 0  # nothing below the point mass
    assert feature.bin_counts[1] >= 7000
    assert sum(feature.bin_counts) == 10_000


def test_constant_column_gets_bins_below_at_and_above() -> None:
    feature = _one(np.full(500, 3.5, np.float32)).feature("x")
    assert feature.edges[0] == 3.5
    assert feature.edges[1] == float(np.nextafter(np.float32(3.5), np.float32(9)))
    assert feature.bin_counts == (0, 500, 0)


def test_nan_and_infinity_count_as_missing() -> None:
    values = np.array([1.5, 2.5, np.nan, np.inf, -np.inf, 3.5], np.float32)
    feature = _one(values).feature("x")
    assert (feature.count, feature.missing) == (6, 3)
    assert feature.missing_rate == 0.5
    assert sorted(feature.sample.tolist()) == [1.5, 2.5, 3.5]


def test_all_missing_column_has_one_bin_and_no_sample() -> None:
    feature = _one(np.full(10, np.nan, np.float32)).feature("x")
    assert feature.kind == "numeric"
    assert feature.edges == () and feature.bin_counts == (0,)
    assert feature.sample.size == 0 and feature.quantiles == {}


def test_ks_sample_is_evenly_spaced_order_statistics() -> None:
    values = np.random.default_rng(2).normal(size=50_000).astype(np.float32)
    small = _one(values[:800], ks_sample=1000).feature("x")
    assert np.array_equal(small.sample, np.sort(values[:800]))
    feature = _one(values, ks_sample=1000).feature("x")
    assert feature.sample.size == 1000
    assert feature.sample.dtype == np.float32
    assert np.all(np.diff(feature.sample) >= 0)
    ordered = np.sort(values)
    assert feature.sample[0] == ordered[25] and feature.sample[-1] == ordered[49_975]


def test_small_integer_columns_are_categorical() -> None:
    rng = np.random.default_rng(3)
    matrix = np.column_stack(
        [
            rng.integers(0, 20, 1000),  # 20 codes: categorical
            rng.integers(0, 21, 1000),  # 21: numeric
            rng.integers(0, 3, 1000) + 0.5,  # not integers: numeric
        ]
    ).astype(np.float32)
    matrix[::10, 0] = np.nan
    baseline = build_baseline(matrix, ["a", "b", "c"])
    kinds = [f.kind for f in baseline.features]
    assert kinds == ["categorical", "numeric", "numeric"]
    a = baseline.feature("a")
    assert a.categories == tuple(float(c) for c in range(20))
    assert a.bin_counts[-1] == 0  # "other" is empty at training
    assert sum(a.bin_counts) == 900 and a.missing == 100
    codes = matrix[:, 0][~np.isnan(matrix[:, 0])]
    assert list(a.bin_counts[:-1]) == np.bincount(codes.astype(int)).tolist()


def test_named_categorical_columns_override_the_rule() -> None:
    matrix = np.column_stack([np.arange(100) % 30, np.arange(100) % 3]).astype(
        np.float32
    )
    baseline = build_baseline(matrix, ["hour", "flag"], categorical={"hour"})
    assert [f.kind for f in baseline.features] == ["categorical", "numeric"]
    assert len(baseline.feature("hour").categories) == 30


def test_round_trip_through_json_is_exact() -> None:
    rng = np.random.default_rng(4)
    matrix = np.column_stack(
        [rng.lognormal(size=30_000), rng.integers(0, 5, 30_000), np.zeros(30_000)]
    ).astype(np.float32)
    matrix[rng.random(matrix.shape) < 0.05] = np.nan
    baseline = build_baseline(matrix, ["amount", "code", "zero"])
    text = json.dumps(baseline.to_dict(), allow_nan=False)
    again = Baseline.from_dict(json.loads(text))
    assert again.to_dict() == baseline.to_dict()
    assert again.rows == 30_000 and again.names == ["amount", "code", "zero"]
    for old, new in zip(baseline.features, again.features, strict=True):
        assert np.array_equal(old.sample, new.sample)
        assert old.sample.dtype == new.sample.dtype


@pytest.mark.parametrize(
    ("shape", "names", "kwargs"),
    [
        ((10, 2), ["a"], {}),
        ((10, 2), ["a", "a"], {}),
        ((10, 2), ["a", "b"], {"categorical": {"c"}}),
        ((10, 2), ["a", "b"], {"bins": 1}),
    ],
)
def test_bad_input_is_refused(
    shape: tuple[int, int], names: list[str], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        build_baseline(np.zeros(shape, np.float32), names, **kwargs)  # type: ignore[arg-type]


def test_malformed_dictionaries_are_refused() -> None:
    data = build_baseline(np.ones((5, 1), np.float32), ["x"]).to_dict()
    with pytest.raises(ValueError):
        Baseline.from_dict({**data, "version": 99})
    broken = json.loads(json.dumps(data))
    broken["features"][0]["bin_counts"] = [1]
    with pytest.raises(ValueError):
        Baseline.from_dict(broken)


def test_importing_the_package_loads_no_statistics_stack() -> None:
    imports = "import ml.monitoring, ml.monitoring.report"
    assert loaded_after(imports, ("scipy", "sklearn", "pandas")) == []
