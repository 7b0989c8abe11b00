"""Feature configuration, column mapping and input validation.

Everything downstream (batch and online) works on canonical column *roles* and on
plain numpy arrays, so this module is the one place that turns a user's DataFrame
into trusted arrays or fails with a `FeatureInputError` that names the field.
pandas is imported lazily so that the online scoring path never loads it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

GROUPS: tuple[str, ...] = ("transaction", "behavioral", "temporal", "aggregation")
REQUIRED_ROLES: tuple[str, ...] = ("user_id", "amount", "timestamp")
OPTIONAL_ROLES: tuple[str, ...] = (
    "transaction_id",
    "merchant_id",
    "merchant_category",
    "device_type",
    "device_id",
    "location",
    "payment_method",
    "is_fraud",
)
ROLES: tuple[str, ...] = REQUIRED_ROLES + OPTIONAL_ROLES
# Roles whose values are identifiers/categories; they are compared as strings.
ID_ROLES: tuple[str, ...] = (
    "user_id",
    "merchant_id",
    "merchant_category",
    "device_type",
    "device_id",
    "location",
    "payment_method",
)

_UNIT_NS = {
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
_DURATION = re.compile(r"^(\d+)([smhdw])$")

# The largest amount the features take: larger ones count as this much, so that sums,
# squares, ratios and z-scores stay finite in float32, the type models score. The API
# refuses larger amounts (functions/api/routes/predict.py holds the same number).
MAX_AMOUNT = 1e12
# The times a transaction scored online may have, [MIN_TIMESTAMP, MAX_TIMESTAMP): in
# int64 nanoseconds with room for every window and gap (that type ends in 2262). The
# API documents the same range.
MIN_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIMESTAMP = datetime(2200, 1, 1, tzinfo=UTC)

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


class FeatureInputError(ValueError):
    """Bad feature input or configuration; `field` names the offending role/key."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"message": self.message, "field": self.field}


def parse_duration(text: str, field: str = "window") -> int:
    """'30m', '24h', '7d', '2w' -> nanoseconds."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise FeatureInputError(
            f"invalid duration {text!r}: expected <integer><s|m|h|d|w>, e.g. '24h'",
            field,
        )
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


def _as_tuple(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise FeatureInputError(f"{field} must be a list of strings", field)
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise FeatureInputError(f"{field} must be a list of strings", field)
    if len(set(items)) != len(items):
        raise FeatureInputError(f"{field} contains duplicates: {list(items)}", field)
    return items


# Keys added after feature sets were first stored, with the value that keeps a stored
# configuration without them meaning what it meant: those features off.
ADDED_KEYS: dict[str, tuple[str, ...]] = {
    "user_fraud_rate_windows": (),
    "amount_ratio_windows": (),
}
_WINDOW_KEYS = (
    "windows",
    "fraud_rate_windows",
    "distinct_windows",
    "user_fraud_rate_windows",
    "amount_ratio_windows",
)


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature groups to compute and the time windows they use.

    `label_delay`: a label of a transaction at time s counts as known at time t
    iff s + label_delay <= t (and s < t). `fraud_rate_windows` and
    `user_fraud_rate_windows`: the windows of the merchant's and the user's fraud
    rates over known labels. `amount_ratio_windows`: the windows of the user's mean
    amount and the amount against it. `distinct_windows` are the windows of the
    behavioural distinct-device/-country counts.
    """

    groups: tuple[str, ...] = GROUPS
    windows: tuple[str, ...] = ("1h", "24h", "7d", "30d")
    label_delay: str = "7d"
    fraud_rate_windows: tuple[str, ...] = ("1d", "7d", "30d")
    distinct_windows: tuple[str, ...] = ("7d", "30d")
    user_fraud_rate_windows: tuple[str, ...] = ("1d", "7d", "30d")
    amount_ratio_windows: tuple[str, ...] = ("24h", "7d", "30d")

    def __post_init__(self) -> None:
        groups = _as_tuple(self.groups, "groups")
        if not groups:
            raise FeatureInputError("groups must not be empty", "groups")
        unknown = [g for g in groups if g not in GROUPS]
        if unknown:
            raise FeatureInputError(
                f"unknown feature group(s) {unknown}; known: {list(GROUPS)}", "groups"
            )
        object.__setattr__(self, "groups", tuple(g for g in GROUPS if g in groups))
        for name in _WINDOW_KEYS:
            items = _as_tuple(getattr(self, name), name)
            for item in items:
                if parse_duration(item, name) <= 0:
                    raise FeatureInputError(f"{name}: {item!r} must be > 0", name)
            object.__setattr__(self, name, items)
        if not isinstance(self.label_delay, str):
            raise FeatureInputError("label_delay must be a string", "label_delay")
        parse_duration(self.label_delay, "label_delay")

    @property
    def window_ns(self) -> tuple[tuple[str, int], ...]:
        return _with_ns(self.windows)

    @property
    def fraud_window_ns(self) -> tuple[tuple[str, int], ...]:
        return _with_ns(self.fraud_rate_windows)

    @property
    def user_fraud_window_ns(self) -> tuple[tuple[str, int], ...]:
        return _with_ns(self.user_fraud_rate_windows)

    @property
    def ratio_window_ns(self) -> tuple[tuple[str, int], ...]:
        return _with_ns(self.amount_ratio_windows)

    @property
    def distinct_window_ns(self) -> tuple[tuple[str, int], ...]:
        return _with_ns(self.distinct_windows)

    @property
    def label_delay_ns(self) -> int:
        return parse_duration(self.label_delay, "label_delay")

    def to_dict(self) -> dict[str, Any]:
        """JSON form; a key of `ADDED_KEYS` at its "off" value is left out, so a
        configuration stored before that key existed keeps its exact form."""
        out: dict[str, Any] = {
            "groups": list(self.groups),
            "windows": list(self.windows),
            "label_delay": self.label_delay,
            "fraud_rate_windows": list(self.fraud_rate_windows),
            "distinct_windows": list(self.distinct_windows),
        }
        for key, off in ADDED_KEYS.items():
            value = getattr(self, key)
            if value != off:
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """A stored configuration (`to_dict`'s form): a missing key of `ADDED_KEYS`
        means that feature was off; other missing keys take their defaults."""
        cls._check_keys(data)
        values: dict[str, Any] = dict(ADDED_KEYS)
        values.update(data)
        return cls(**values)

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """A configuration asked for now: every missing key takes its default."""
        cls._check_keys(data)
        return cls(**dict(data))

    @classmethod
    def _check_keys(cls, data: Mapping[str, Any]) -> None:
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise FeatureInputError(f"unknown feature config key(s) {extra}", extra[0])


def _with_ns(windows: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    return tuple((w, parse_duration(w)) for w in windows)


# --------------------------------------------------------------------------- input


@dataclass(frozen=True)
class Categorical:
    """A factorised id column: codes index `uniques`; -1 marks a missing value."""

    codes: Int64Array
    uniques: list[str]


@dataclass(frozen=True)
class PreparedTransactions:
    """Validated transactions as numpy arrays, in input row order."""

    transaction_id: npt.NDArray[np.object_]
    ts: Int64Array  # epoch nanoseconds, UTC
    amount: Float64Array
    label: Float64Array | None  # 0.0 / 1.0 / NaN (unlabelled)
    categorical: dict[str, Categorical] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()

    @property
    def n(self) -> int:
        return int(self.ts.shape[0])


def apply_column_mapping(
    df: pd.DataFrame, mapping: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Rename source columns to canonical roles; keep only role columns.

    `mapping` is {role: source column}. Roles not in the mapping are taken from a
    column of the same name when there is one.
    """
    mapping = dict(mapping or {})
    unknown = sorted(set(mapping) - set(ROLES))
    if unknown:
        raise FeatureInputError(
            f"unknown column role(s) {unknown}; known: {list(ROLES)}", unknown[0]
        )
    columns: dict[str, Any] = {}
    for role in ROLES:
        if role in mapping:
            source = mapping[role]
            if source not in df.columns:
                raise FeatureInputError(
                    f"column {source!r} mapped to {role!r} is not in the data", role
                )
            columns[role] = df[source]
        elif role in df.columns:
            columns[role] = df[role]
    import pandas as pd

    return pd.DataFrame(columns, index=df.index)


def prepare_transactions(df: pd.DataFrame) -> PreparedTransactions:
    """Validate a canonical-role DataFrame and convert it to arrays."""
    import pandas as pd

    for role in REQUIRED_ROLES:
        if role not in df.columns:
            raise FeatureInputError(f"missing required column {role!r}", role)
    ts = _timestamps_ns(df["timestamp"])
    amount = _amounts(df["amount"])
    categorical: dict[str, Categorical] = {}
    for role in ID_ROLES:
        if role in df.columns:
            codes, uniques = pd.factorize(df[role].astype("string"))
            categorical[role] = Categorical(
                np.asarray(codes, dtype=np.int64), [str(u) for u in uniques]
            )
    missing_users = int((categorical["user_id"].codes < 0).sum())
    if missing_users:
        raise FeatureInputError(
            f"user_id has {missing_users} missing value(s); it is required", "user_id"
        )
    label = _labels(df["is_fraud"]) if "is_fraud" in df.columns else None
    if "transaction_id" in df.columns:
        tid_series = df["transaction_id"].astype("string")
        if bool(tid_series.isna().any()):
            raise FeatureInputError(
                "transaction_id has missing values", "transaction_id"
            )
        tids = tid_series.to_numpy(dtype=object)
    else:
        tids = np.array([str(i) for i in range(len(df))], dtype=object)
    return PreparedTransactions(
        transaction_id=tids,
        ts=ts,
        amount=amount,
        label=label,
        categorical=categorical,
        roles=frozenset(str(c) for c in df.columns if c in ROLES),
    )


def _examples(values: Any) -> str:
    return ", ".join(repr(v) for v in list(values[:3]))


def _timestamps_ns(series: pd.Series) -> Int64Array:
    import pandas as pd

    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series.dtype):
        parsed = series.dt.tz_localize("UTC")  # naive datetimes are taken as UTC
    elif pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.infer_dtype(
        series, skipna=True
    ) in ("integer", "floating", "mixed-integer-float", "decimal", "boolean"):
        raise FeatureInputError(
            "timestamp must be datetimes or ISO-8601 strings, not numbers", "timestamp"
        )
    else:
        parsed = pd.to_datetime(series, utc=True, errors="coerce", format="mixed")
        bad = parsed.isna() & series.notna()
        if bool(bad.any()):
            raise FeatureInputError(
                f"timestamp has {int(bad.sum())} unparseable value(s), e.g. "
                f"{_examples(series[bad].tolist())}",
                "timestamp",
            )
    missing = int(parsed.isna().sum())
    if missing:
        raise FeatureInputError(
            f"timestamp has {missing} missing value(s); it is required", "timestamp"
        )
    try:
        values = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]")
    except (OverflowError, ValueError) as exc:  # OutOfBoundsDatetime is a ValueError
        raise FeatureInputError(f"timestamp out of range: {exc}", "timestamp") from exc
    result: Int64Array = values.view(np.int64).copy()
    return result


def _amounts(series: pd.Series) -> Float64Array:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        raise FeatureInputError("amount must be numeric, not boolean", "amount")
    numeric = pd.to_numeric(series, errors="coerce")
    values = np.asarray(numeric, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise FeatureInputError(
            f"amount has {int(bad.sum())} missing, non-numeric or infinite value(s), "
            f"e.g. {_examples(series[bad].tolist())}",
            "amount",
        )
    negative = values < 0
    if negative.any():
        raise FeatureInputError(
            f"amount has {int(negative.sum())} negative value(s), e.g. "
            f"{_examples(values[negative].tolist())}",
            "amount",
        )
    return np.minimum(values, MAX_AMOUNT)


def _labels(series: pd.Series) -> Float64Array:
    import pandas as pd

    numeric = pd.to_numeric(series.astype("object"), errors="coerce")
    values = np.asarray(numeric, dtype=np.float64)
    bad = (series.notna().to_numpy() & np.isnan(values)) | (
        ~np.isnan(values) & (values != 0.0) & (values != 1.0)
    )
    if bad.any():
        raise FeatureInputError(
            f"is_fraud must be 0/1 (or empty when unlabelled); got "
            f"{_examples(series[bad].tolist())}",
            "is_fraud",
        )
    return values


def validate_amount(value: Any) -> float:
    """Online counterpart of the batch amount checks (and cap, ``MAX_AMOUNT``)."""
    if isinstance(value, bool):
        raise FeatureInputError("amount must be numeric, not boolean", "amount")
    try:
        amount = float(value)
    except (TypeError, ValueError) as exc:
        raise FeatureInputError(f"amount {value!r} is not a number", "amount") from exc
    if not math.isfinite(amount) or amount < 0:
        raise FeatureInputError(
            f"amount {value!r} must be a finite number >= 0", "amount"
        )
    return amount if amount <= MAX_AMOUNT else MAX_AMOUNT
