"""Stratified and time-based splits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from ml.training import SplitError, stratified_split, time_split
from ml.training.splits import (
    SplitPlan,
    arrow_timestamps_ns,
    make_splits,
    out_of_time_split,
)


def test_stratified_split_keeps_ratio_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(10_000) < 0.03).astype(np.int64)
    train, test = stratified_split(y, 0.8, seed=7)
    assert np.intersect1d(train, test).size == 0
    assert train.size + test.size == y.size
    assert abs(train.size / y.size - 0.8) < 0.001
    assert abs(y[train].mean() - y.mean()) < 0.001
    assert abs(y[test].mean() - y.mean()) < 0.002
    again = stratified_split(y, 0.8, seed=7)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    other = stratified_split(y, 0.8, seed=8)
    assert not np.array_equal(train, other[0])


def test_stratified_split_keeps_rare_class_on_both_sides() -> None:
    y = np.array([0] * 50 + [1, 1])
    train, test = stratified_split(y, 0.95, seed=1)
    assert y[train].sum() == 1 and y[test].sum() == 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_stratified_split_rejects_bad_fraction(fraction: float) -> None:
    with pytest.raises(SplitError) as info:
        stratified_split(np.array([0, 1, 0, 1]), fraction, seed=0)
    assert info.value.field == "train_test_split"


def _day_ns(d: date, hour: int = 0) -> int:
    moment = datetime(d.year, d.month, d.day, hour) - datetime(1970, 1, 1)
    return int(moment / timedelta(microseconds=1)) * 1000


TS = np.array([_day_ns(date(2026, 1, day), 12) for day in range(1, 31)], dtype=np.int64)


def test_time_split_windows_and_gap() -> None:
    train, test = time_split(
        TS, "2026-01-01", "2026-01-10", "7d", "2026-01-18", "2026-01-30"
    )
    assert train.tolist() == list(range(0, 10))  # the end date is inclusive
    assert test.tolist() == list(range(17, 30))
    t2, _ = time_split(
        TS,
        date(2026, 1, 1),
        datetime(2026, 1, 10),
        timedelta(days=2),
        "2026-01-12",
        "2026-01-20",
    )
    assert t2.tolist() == list(range(0, 9))  # a datetime end is exclusive


def test_time_split_rejects_gap_violation() -> None:
    with pytest.raises(SplitError) as info:
        time_split(TS, "2026-01-01", "2026-01-10", "7d", "2026-01-15", "2026-01-30")
    assert info.value.field == "test_start"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("2025-01-01", "2025-01-10", "1d", "2026-01-15", "2026-01-30"), "train_start"),
        (("2026-01-01", "2026-01-10", "1d", "2027-01-15", "2027-01-30"), "test_start"),
        (("2026-01-10", "2026-01-01", "1d", "2026-01-15", "2026-01-30"), "train_end"),
        (("2026-01-01", "2026-01-10", "soon", "2026-01-15", "2026-01-30"), "gap"),
        (("yesterday", "2026-01-10", "1d", "2026-01-15", "2026-01-30"), "train_start"),
    ],
)
def test_time_split_errors(args: tuple[str, ...], field: str) -> None:
    with pytest.raises(SplitError) as info:
        time_split(TS, *args)
    assert info.value.field == field


_DAY = 86_400 * 10**9


def _days(n: int, per_day: int = 10) -> np.ndarray:
    """Timestamps (ns) spread over n days, `per_day` rows a day, in time order."""
    return (np.arange(n * per_day) * (_DAY // per_day)).astype(np.int64)


def test_out_of_time_split_tests_on_the_last_period_after_a_gap() -> None:
    ts = _days(100)
    train, test = out_of_time_split(ts, 7 * _DAY, 0.2)
    assert ts[test].min() >= ts.max() - int(0.2 * ts.max())
    assert ts[train].max() < ts[test].min() - 7 * _DAY
    assert np.union1d(train, test).size < ts.size  # the gap's rows are in neither


def test_make_splits_carves_validation_from_the_end_of_training() -> None:
    ts = _days(100)
    y = (np.arange(ts.size) % 10 == 0).astype(np.int64)
    splits = make_splits(SplitPlan(gap="5d"), ts, y)
    fit, val, test = (ts[i] for i in (splits.fit, splits.validation, splits.test))
    assert fit.max() < val.min() - 5 * _DAY  # the same gap before validation
    assert val.max() < test.min() - 5 * _DAY
    assert splits.periods["type"] == "out_of_time" and splits.warnings == ()
    windows = ("1970-01-01", "1970-02-20", "1970-03-01", "1970-04-01")
    timed = make_splits(SplitPlan(kind="time", gap="5d", windows=windows), ts, y)
    assert ts[timed.validation].max() < 51 * _DAY  # an end date includes its day
    assert ts[timed.fit].max() < ts[timed.validation].min() - 5 * _DAY


def test_random_split_validates_on_a_stratified_slice_and_warns() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.05).astype(np.int64)
    splits = make_splits(SplitPlan(kind="random", train_fraction=0.8), None, y)
    assert np.intersect1d(splits.fit, splits.validation).size == 0
    assert np.intersect1d(splits.validation, splits.test).size == 0
    assert abs(y[splits.validation].mean() - y.mean()) < 0.01
    assert "random split" in splits.warnings[0]


def test_a_span_too_short_for_the_gap_names_the_field() -> None:
    with pytest.raises(SplitError) as info:
        make_splits(SplitPlan(gap="30d"), _days(20), np.zeros(200))
    assert info.value.field == "split.gap"
    with pytest.raises(SplitError) as info:
        make_splits(SplitPlan(gap="8d"), _days(20), np.zeros(200))
    assert info.value.field == "split.validation_fraction"


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_arrow_timestamps_are_read_in_nanoseconds_whatever_the_unit(
    unit: str, tz: str | None
) -> None:
    import pyarrow as pa

    moments = [datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)]
    values = [m if tz else m.replace(tzinfo=None) for m in moments]
    column = pa.chunked_array([pa.array(values, pa.timestamp(unit, tz=tz))])
    expected = [int(m.timestamp()) * 10**9 for m in moments]
    assert arrow_timestamps_ns(column).tolist() == expected
    with pytest.raises(SplitError):
        arrow_timestamps_ns(pa.chunked_array([pa.array(["2026-01-01"])]))
