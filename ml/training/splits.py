"""Train/test splits: stratified (random, keeps the fraud ratio) and time-based.

The time split enforces a gap between the end of training and the start of testing:
labels arrive late (chargebacks), so a test window right after training would leak
transactions whose labels the model could not have known.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ml.features.config import FeatureInputError, parse_duration

IntArray = npt.NDArray[np.int64]
_DAY_NS = 86_400 * 10**9


class SplitError(ValueError):
    """A split that cannot be made; `field` names the offending request field."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def stratified_split(
    y: npt.NDArray[Any], train_fraction: float, seed: int
) -> tuple[IntArray, IntArray]:
    """Sorted (train, test) index arrays with each class split at `train_fraction`.

    Deterministic for a given seed. Every class with at least two rows gets at least one
    row on each side, so a rare fraud class never vanishes from the test set.
    """
    if not 0.0 < train_fraction < 1.0:
        raise SplitError(
            f"train_test_split must be strictly between 0 and 1, got {train_fraction}",
            "train_test_split",
        )
    labels = np.asarray(y)
    rng = np.random.default_rng(seed)
    train: list[IntArray] = []
    test: list[IntArray] = []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls).astype(np.int64)
        rng.shuffle(idx)
        k = int(round(train_fraction * idx.size))
        if idx.size >= 2:
            k = min(max(k, 1), idx.size - 1)
        train.append(idx[:k])
        test.append(idx[k:])
    tr = np.sort(np.concatenate(train)) if train else np.empty(0, np.int64)
    te = np.sort(np.concatenate(test)) if test else np.empty(0, np.int64)
    if tr.size == 0 or te.size == 0:
        raise SplitError(
            "not enough rows to split into train and test", "train_test_split"
        )
    return tr, te


def time_split(
    timestamps_ns: npt.NDArray[Any],
    train_start: Any,
    train_end: Any,
    gap: str | timedelta,
    test_start: Any,
    test_end: Any,
) -> tuple[IntArray, IntArray]:
    """(train, test) row indices for half-open windows [start, end).

    Bounds are `date`, `datetime` or ISO strings; naive values are UTC. A bare date used
    as an *end* includes that whole day. Requires ``test_start >= train_end + gap``.
    """
    ts = np.asarray(timestamps_ns).astype(np.int64, copy=False)
    a = _to_ns(train_start, "train_start", end=False)
    b = _to_ns(train_end, "train_end", end=True)
    c = _to_ns(test_start, "test_start", end=False)
    d = _to_ns(test_end, "test_end", end=True)
    gap_ns = _gap_ns(gap)
    if b <= a:
        raise SplitError("train_end must be after train_start", "train_end")
    if d <= c:
        raise SplitError("test_end must be after test_start", "test_end")
    if c < b + gap_ns:
        raise SplitError(
            f"test_start must be at least the label delay ({gap}) after train_end",
            "test_start",
        )
    train = np.flatnonzero((ts >= a) & (ts < b)).astype(np.int64)
    test = np.flatnonzero((ts >= c) & (ts < d)).astype(np.int64)
    if train.size == 0:
        raise SplitError("no rows fall in the training window", "train_start")
    if test.size == 0:
        raise SplitError("no rows fall in the test window", "test_start")
    return train, test


def _gap_ns(gap: str | timedelta) -> int:
    if isinstance(gap, timedelta):
        ns = int(gap / timedelta(microseconds=1)) * 1000
    else:
        try:
            ns = parse_duration(gap, "gap")
        except FeatureInputError as exc:
            raise SplitError(str(exc), "gap") from exc
    if ns < 0:
        raise SplitError("gap must not be negative", "gap")
    return ns


def _to_ns(value: Any, field: str, *, end: bool) -> int:
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                value = date.fromisoformat(text)
            else:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise SplitError(
                f"{field}: not an ISO date/datetime: {text!r}", field
            ) from exc
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta // timedelta(microseconds=1)) * 1000
    if isinstance(value, date):
        days = (value - date(1970, 1, 1)).days
        return (days + (1 if end else 0)) * _DAY_NS
    raise SplitError(f"{field} must be a date, datetime or ISO string", field)
