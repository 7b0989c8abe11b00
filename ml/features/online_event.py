"""One transaction as the online engine reads it: checked fields, timestamp in epoch ns.

`Txn` is the parsed form every online module works on; `normalize_transaction` gives
its JSON form, which can be stored as an event and replayed. This module does not
import pandas (missing values are recognised by duck typing).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from ml.features.config import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    ROLES,
    FeatureInputError,
    validate_amount,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_MIN_NS = (MIN_TIMESTAMP - _EPOCH) // _US * 1_000
_MAX_NS = (MAX_TIMESTAMP - _EPOCH) // _US * 1_000
ID_FIELDS = tuple(r for r in ROLES if r not in ("amount", "timestamp", "is_fraud"))


def to_epoch_ns(value: Any) -> int:
    """datetime / pandas Timestamp / numpy datetime64 / ISO string / int ns -> ns.

    Naive values are taken as UTC, as in batch.
    """
    if is_missing(value):
        raise FeatureInputError("timestamp is missing; it is required", "timestamp")
    if isinstance(value, bool):
        raise FeatureInputError("timestamp must be a datetime", "timestamp")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise FeatureInputError("timestamp is missing", "timestamp")
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise FeatureInputError(
                f"timestamp {value!r} is not an ISO-8601 datetime", "timestamp"
            ) from exc
    if isinstance(value, datetime):
        nanos = getattr(value, "value", None)  # pandas.Timestamp keeps nanoseconds
        if isinstance(nanos, int) and hasattr(value, "as_unit"):
            return nanos
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        delta = value - _EPOCH
        seconds = delta.days * 86_400 + delta.seconds
        return int(seconds * 1_000_000_000 + delta.microseconds * 1_000)
    raise FeatureInputError(
        f"timestamp {value!r} is not a datetime or ISO-8601 string", "timestamp"
    )


def is_missing(value: Any) -> bool:
    """None, NaN, pandas NA/NaT (duck-typed: this module never imports pandas)."""
    if type(value) is str:  # the common case, first
        return False
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def clean_id(value: Any) -> str | None:
    if type(value) is str:
        return value
    return None if is_missing(value) else str(value)


def clean_label(value: Any) -> int | None:
    if is_missing(value):
        return None
    if value in (0, 1):  # also True/False, 0.0/1.0
        return int(value)
    raise FeatureInputError(f"is_fraud must be 0 or 1, got {value!r}", "is_fraud")


class Txn:
    """A checked transaction: time `t` (epoch ns), `amount`, `ids` by role, `tid`,
    `label` (0, 1 or None)."""

    __slots__ = ("t", "amount", "ids", "tid", "label")

    t: int
    amount: float
    ids: dict[str, str | None]
    tid: str | None
    label: int | None

    def __init__(self, txn: Mapping[str, Any]) -> None:
        user = clean_id(txn.get("user_id"))
        if user is None:
            raise FeatureInputError("user_id is required", "user_id")
        if is_missing(txn.get("amount")):
            raise FeatureInputError("amount is required", "amount")
        self.t = to_epoch_ns(txn.get("timestamp"))
        if not _MIN_NS <= self.t < _MAX_NS:
            raise FeatureInputError(
                f"timestamp {txn.get('timestamp')!r} is outside the range the features "
                f"take, {MIN_TIMESTAMP.isoformat()} to {MAX_TIMESTAMP.isoformat()}",
                "timestamp",
            )
        self.amount = validate_amount(txn["amount"])
        self.ids = {role: clean_id(txn.get(role)) for role in ID_FIELDS}
        self.ids["user_id"] = user
        self.tid = clean_id(txn.get("transaction_id"))
        self.label = clean_label(txn.get("is_fraud"))

    @classmethod
    def normalized(cls, event: Mapping[str, Any]) -> Txn:
        """From ``normalize_transaction``'s output, which is valid already."""
        p = cls.__new__(cls)
        p.t, p.amount = event["timestamp"], event["amount"]
        p.ids = {role: event.get(role) for role in ID_FIELDS}
        p.tid, p.label = event["transaction_id"], event["is_fraud"]
        return p


def normalize_transaction(txn: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `update` reads, as JSON types (timestamp in epoch ns): feeding this
    back to `update` changes a state exactly as the original transaction did, so it can
    be stored as an event and replayed."""
    p = Txn(txn)
    out: dict[str, Any] = {k: v for k, v in p.ids.items() if v is not None}
    out.update(timestamp=p.t, amount=p.amount, transaction_id=p.tid, is_fraud=p.label)
    return out
