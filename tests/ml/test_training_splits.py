"""Stratified and time-based splits."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from ml.training import SplitError, stratified_split, time_split


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
