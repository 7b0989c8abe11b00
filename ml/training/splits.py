"""Train/test splits: stratified (random, keeps the fraud ratio) and time-based.

The time split enforces a gap between the end of training and the start of testing:
labels arrive late (chargebacks), so a test window right after training would leak
transactions whose labels the model could not have known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

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


SplitKind = Literal["out_of_time", "time", "random"]
RANDOM_SPLIT_WARNING = (
    "random split: the same cards and merchants fall on both sides and labels are "
    "used before they would have arrived, so these metrics flatter the model on fraud "
    "data; the default out-of-time split gives the honest figure"
)


@dataclass(frozen=True)
class SplitPlan:
    """How to cut rows into fit, validation and test sets.

    out_of_time (default): test = the last `test_fraction` of the time span, training
    = everything before it minus a `gap` (the label delay). time: the same with explicit
    train/test windows. random: stratified, `train_fraction` of the rows train. In
    every kind the validation set is carved from the training set: the last
    `validation_fraction` of its time span after another gap (random: a stratified
    slice of the training rows).
    """

    kind: SplitKind = "out_of_time"
    gap: str = "7d"
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    train_fraction: float = 0.8
    windows: tuple[Any, Any, Any, Any] | None = None  # train_start/end, test_start/end
    seed: int = 42


@dataclass(frozen=True)
class Splits:
    """Sorted row indices of the three sets, and what the job reports about them."""

    fit: IntArray
    validation: IntArray
    test: IntArray
    train: IntArray  # the whole training period: fit, its gap and validation
    warnings: tuple[str, ...] = ()
    periods: dict[str, str] = field(default_factory=dict)


def make_splits(
    plan: SplitPlan, timestamps_ns: npt.NDArray[Any] | None, y: npt.NDArray[Any]
) -> Splits:
    """Apply `plan`. Raises SplitError naming the request field to change."""
    if not 0.0 < plan.validation_fraction < 1.0:
        raise SplitError(
            "validation_fraction must be strictly between 0 and 1",
            "split.validation_fraction",
        )
    if plan.kind == "random":
        train, test = stratified_split(y, plan.train_fraction, plan.seed)
        fit_pos, val_pos = stratified_split(
            np.asarray(y)[train], 1.0 - plan.validation_fraction, plan.seed + 1
        )
        return Splits(
            train[fit_pos],
            train[val_pos],
            test,
            train,
            (RANDOM_SPLIT_WARNING,),
            {"type": "random"},
        )
    if timestamps_ns is None:
        raise SplitError(
            "the feature set has no timestamp column for a time-ordered split; ask "
            "for a random split (train_test_split)",
            "split.type",
        )
    ts = np.asarray(timestamps_ns).astype(np.int64, copy=False)
    gap_ns = _gap_ns(plan.gap)
    if plan.kind == "time":
        assert plan.windows is not None, "a time split names its windows"
        train, test = time_split(ts, *plan.windows[:2], plan.gap, *plan.windows[2:])
    else:
        train, test = out_of_time_split(ts, gap_ns, plan.test_fraction)
    fit, val, val_start = _carve_validation(ts, train, gap_ns, plan.validation_fraction)
    periods = {
        "type": plan.kind,
        "fit_start": _iso(ts[fit].min()),
        "validation_start": _iso(val_start),
        "validation_end": _iso(ts[val].max()),
        "test_start": _iso(ts[test].min()),
        "test_end": _iso(ts[test].max()),
        "gap": plan.gap,
    }
    return Splits(fit, val, test, train, (), periods)


def out_of_time_split(
    timestamps_ns: npt.NDArray[Any], gap_ns: int, test_fraction: float
) -> tuple[IntArray, IntArray]:
    """(train, test): test = the last `test_fraction` of the time span, train = the
    rows at least `gap_ns` before the test period starts."""
    if not 0.0 < test_fraction < 1.0:
        raise SplitError(
            "test_fraction must be strictly between 0 and 1", "split.test_fraction"
        )
    ts = np.asarray(timestamps_ns).astype(np.int64, copy=False)
    if ts.size == 0:
        raise SplitError("no rows to split", "feature_set_id")
    first, last = int(ts.min()), int(ts.max())
    test_start = last - int(test_fraction * (last - first))
    test = np.flatnonzero(ts >= test_start).astype(np.int64)
    train = np.flatnonzero(ts < test_start - gap_ns).astype(np.int64)
    if train.size == 0:
        raise SplitError(
            f"the data spans {_days(last - first)}: too short for a test period of "
            f"{test_fraction:.0%} plus a gap of {_days(gap_ns)} (the label delay); "
            "give a shorter split.gap or a smaller split.test_fraction",
            "split.gap",
        )
    return train, test


def _carve_validation(
    ts: IntArray, train: IntArray, gap_ns: int, fraction: float
) -> tuple[IntArray, IntArray, int]:
    """(fit, validation, validation start) from the training rows, time-ordered."""
    t = ts[train]
    first, last = int(t.min()), int(t.max())
    val_start = last - int(fraction * (last - first))
    val = train[t >= val_start]
    fit = train[t < val_start - gap_ns]
    if fit.size == 0 or val.size == 0:
        raise SplitError(
            f"the training period spans {_days(last - first)}: too short to keep "
            f"{fraction:.0%} of it for validation after a gap of {_days(gap_ns)}; give "
            "a shorter split.gap, a smaller split.validation_fraction or more data",
            "split.validation_fraction",
        )
    return fit, val, val_start


def _days(ns: int) -> str:
    return f"{ns / _DAY_NS:.1f} days"


def _iso(ns: Any) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(ns) // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def arrow_timestamps_ns(column: Any) -> IntArray:
    """Epoch nanoseconds of a pyarrow timestamp or date column, whatever its unit and
    zone (a zone-less column is read as UTC)."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind):
        column = column.cast(pa.timestamp("ns", tz=kind.tz))
    elif pa.types.is_date(kind):
        column = column.cast(pa.timestamp("ns"))
    else:
        raise SplitError(
            f"the timestamp column holds {kind}, not timestamps", "feature_set_id"
        )
    return np.asarray(column.cast(pa.int64()).to_numpy(), dtype=np.int64)
