"""One short sentence per feature value, for fraud analysts.

`reason` covers every feature of `ml.features.registry` by name pattern, so features of
any configured window (``user_txn_count_24h``, ``merchant_fraud_rate_30d``,
``user_distinct_devices_7d``, ...) read naturally. `row` holds the transaction's other
feature values; some sentences use them (the hour behind ``hour_sin``, the labelled count
behind a fraud rate). A positive contribution adds "(raises risk)", a negative one
"(lowers risk)". Times are UTC, as the features are. Aggregates count only transactions
*before* this one (the features are point-in-time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from ml.features.behavioral_features import NO_PREVIOUS_SECONDS
from ml.features.temporal_features import NIGHT_END_HOUR

__all__ = ["generic_reason", "reason"]

Row = Mapping[str, float | None]
_Sentence = Callable[[re.Match[str], float, Row], str]

_WEEKDAYS = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_UNITS = {"s": "second", "m": "minute", "h": "h", "d": "day", "w": "week"}


def _get(row: Row, name: str) -> float | None:
    value = row.get(name)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _count(value: float) -> int:
    return int(round(value))


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _window(text: str) -> str:
    """'24h' -> 'the last 24 h', '7d' -> 'the last 7 days', '1h' -> 'the last hour'."""
    match = re.fullmatch(r"(\d+)([smhdw])", text)
    if match is None:
        return f"the last {text}"
    n, unit = int(match.group(1)), match.group(2)
    if unit == "h":
        return "the last hour" if n == 1 else f"the last {n} h"
    word = _UNITS[unit]
    return f"the last {word}" if n == 1 else f"the last {n} {word}s"


def _clock(hour: float) -> str:
    h = _count(hour) % 24
    text = f"{h:02d}:00 UTC"
    return f"{text}, a night hour" if h < NIGHT_END_HOUR else text


def _duration(seconds: float) -> str:
    if seconds < 1.0:
        return "less than a second"
    if seconds < 90.0:
        return _plural(_count(seconds), "second")
    if seconds < 90.0 * 60.0:
        return _plural(_count(seconds / 60.0), "minute")
    if seconds < 48.0 * 3600.0:
        return _plural(_count(seconds / 3600.0), "hour")
    return _plural(_count(seconds / 86400.0), "day")


def _row_hour(row: Row) -> float | None:
    hour = _get(row, "hour")
    if hour is not None:
        return hour
    sin, cos = _get(row, "hour_sin"), _get(row, "hour_cos")
    if sin is None or cos is None:
        return None
    return (math.atan2(sin, cos) * 24.0 / (2.0 * math.pi)) % 24.0


# ---------------------------------------------------------------- transaction


def _amount(m: re.Match[str], v: float, row: Row) -> str:
    amount = math.expm1(v) if m.group(0) == "log_amount" else v
    text = f"amount of {_money(amount)}"
    if m.group(0) == "log_amount":
        text += " (on a log scale)"
    mean = _get(row, "user_mean_amount")
    if mean is not None and mean > 0:
        text += f"; this user's average is {_money(mean)}"
    return text


def _user_mean(m: re.Match[str], v: float, row: Row) -> str:
    count = _get(row, "user_txn_count")
    if v == 0 and (count is None or count == 0):
        return "no earlier transactions of this user to average"
    return f"this user's earlier transactions average {_money(v)}"


def _no_history(row: Row, minimum: int) -> bool:
    count = _get(row, "user_txn_count")
    mean = _get(row, "user_mean_amount")
    if count is not None:
        return count < minimum
    return mean is not None and mean == 0


def _ratio(m: re.Match[str], v: float, row: Row) -> str:
    if v == 1 and _no_history(row, 1):
        return "no spending history of this user to compare the amount with"
    return f"amount is {v:.2f} times this user's average"


def _zscore(m: re.Match[str], v: float, row: Row) -> str:
    if v == 0:
        if _no_history(row, 2):
            return "too little history to compare the amount with this user's spread"
        return "amount is right at this user's average"
    side = "above" if v > 0 else "below"
    return f"amount is {abs(v):.1f} standard deviations {side} this user's average"


def _round(m: re.Match[str], v: float, row: Row) -> str:
    return (
        "amount is a round multiple of 10"
        if v >= 0.5
        else "amount is not a round multiple of 10"
    )


def _cents(m: re.Match[str], v: float, row: Row) -> str:
    cents = _count(v) % 100
    return "amount has no cents" if cents == 0 else f"amount ends in .{cents:02d}"


def _has_cents(m: re.Match[str], v: float, row: Row) -> str:
    return (
        "amount has non-zero cents"
        if v >= 0.5
        else "amount is a whole number (no cents)"
    )


# ----------------------------------------------------------------- behavioral

_NEW = {
    # feature suffix: (first-time sentence, not-new words)
    "device": ("first time this user pays from this device", "device"),
    "country": ("first time this user pays from this country", "country"),
    "merchant": ("first time this user pays at this merchant", "merchant"),
    "payment_method": (
        "first time this user pays with this payment method",
        "payment method",
    ),
    "merchant_category": (
        "first time this user buys in this merchant category",
        "merchant category",
    ),
}


def _is_new(m: re.Match[str], v: float, row: Row) -> str:
    first, words = _NEW[m.group(1)]
    return first if v >= 0.5 else f"not a new {words} for this user"


def _txn_count(m: re.Match[str], v: float, row: Row) -> str:
    n = _count(v)
    if n == 0:
        return "first transaction by this user (no history)"
    return f"this user has {_plural(n, 'earlier transaction')}"


def _since_last(m: re.Match[str], v: float, row: Row) -> str:
    if v >= NO_PREVIOUS_SECONDS:
        return "first transaction by this user (no previous one)"
    return f"{_duration(v)} after this user's previous transaction"


_DISTINCT = {"devices": ("device", "devices"), "countries": ("country", "countries")}


def _distinct(m: re.Match[str], v: float, row: Row) -> str:
    one, many = _DISTINCT[m.group(1)]
    n = _count(v)
    noun = one if n == 1 else many
    return f"this user used {n} different {noun} in {_window(m.group(2))}"


# ------------------------------------------------------------------- temporal


def _hour(m: re.Match[str], v: float, row: Row) -> str:
    return f"at {_clock(v)}"


def _day(m: re.Match[str], v: float, row: Row) -> str:
    day = _count(v) % 7
    suffix = ", a weekend day" if day >= 5 else ""
    return f"on a {_WEEKDAYS[day]}{suffix}"


def _weekend(m: re.Match[str], v: float, row: Row) -> str:
    day = _get(row, "day_of_week")
    named = f" ({_WEEKDAYS[_count(day) % 7]})" if day is not None else ""
    return f"on a weekend{named}" if v >= 0.5 else f"on a weekday{named}"


def _night(m: re.Match[str], v: float, row: Row) -> str:
    hour = _row_hour(row)
    night = v >= 0.5
    if hour is not None:
        at = f"{_count(hour) % 24:02d}:00 UTC"
        return f"at night, {at}" if night else f"not at night, {at}"
    if night:
        return f"at night (00:00-{NIGHT_END_HOUR - 1:02d}:59 UTC)"
    return f"not at night ({NIGHT_END_HOUR:02d}:00-23:59 UTC)"


def _hour_cycle(m: re.Match[str], v: float, row: Row) -> str:
    hour = _row_hour(row)
    if hour is not None:
        return f"time of day {_clock(hour)}"
    part = "sine" if m.group(1) == "sin" else "cosine"
    return f"time of day on the 24-hour clock ({part} {v:.2f})"


# ---------------------------------------------------------------- aggregation

_ENTITY = {
    # entity: (by whom, whose)
    "user": ("by this user", "this user's"),
    "merchant": ("at this merchant", "this merchant's"),
    "device": ("from this device", "this device's"),
}


def _agg_count(m: re.Match[str], v: float, row: Row) -> str:
    by, _ = _ENTITY[m.group(1)]
    n = _count(v)
    what = "no earlier transactions" if n == 0 else _plural(n, "earlier transaction")
    return f"{what} {by} in {_window(m.group(2))}"


def _agg_sum(m: re.Match[str], v: float, row: Row) -> str:
    _, whose = _ENTITY[m.group(1)]
    return f"{whose} earlier transactions in {_window(m.group(2))} total {_money(v)}"


def _fraud_rate(m: re.Match[str], v: float, row: Row) -> str:
    entity, window = m.group(1), _window(m.group(2))
    labelled = _get(row, f"{entity}_labelled_count_{m.group(2)}")
    if labelled is not None and labelled == 0:
        return f"no labelled transactions of this {entity} in {window} to judge by"
    whose = _ENTITY[entity][1]
    of = f"{whose} {_count(labelled)}" if labelled else whose
    if v == 0:
        return f"none of {of} labelled transactions in {window} were fraud"
    return f"{100.0 * v:.1f}% of {of} labelled transactions in {window} were fraud"


def _labelled(m: re.Match[str], v: float, row: Row) -> str:
    n = _count(v)
    what = "no transactions" if n == 0 else _plural(n, "transaction")
    window = _window(m.group(2))
    return f"{what} of this {m.group(1)} in {window} with a known fraud label"


def _window_mean(m: re.Match[str], v: float, row: Row) -> str:
    window = _window(m.group(1))
    if v == 0:
        return f"no earlier transactions of this user in {window} to average"
    return f"this user's transactions in {window} average {_money(v)}"


def _window_ratio(m: re.Match[str], v: float, row: Row) -> str:
    window = _window(m.group(1))
    mean = _get(row, f"user_amount_mean_{m.group(1)}")
    if v == 1 and mean is not None and mean == 0:
        return f"no spending of this user in {window} to compare the amount with"
    return f"amount is {v:.2f} times this user's average over {window}"


# ---------------------------------------------------------------------- table

_W = r"(\d+[smhdw])"
# (pattern, what the value is, sentence for a known value)
_RULES: tuple[tuple[re.Pattern[str], str, _Sentence], ...] = tuple(
    (re.compile(pattern), label, sentence)
    for pattern, label, sentence in (
        (r"amount", "the amount", _amount),
        (r"log_amount", "the amount", _amount),
        (r"user_mean_amount", "this user's average amount", _user_mean),
        (r"amount_to_user_mean", "the amount against this user's average", _ratio),
        (r"amount_zscore_user", "the amount against this user's spread", _zscore),
        (r"is_round_amount", "whether the amount is round", _round),
        (r"amount_cents", "the cents of the amount", _cents),
        (r"has_cents", "whether the amount has cents", _has_cents),
        (r"user_txn_count", "this user's transaction history", _txn_count),
        (
            r"seconds_since_last_txn",
            "the time since this user's previous transaction",
            _since_last,
        ),
        (
            r"is_new_(device|country|merchant|payment_method|merchant_category)",
            "whether this {0} is new to this user",
            _is_new,
        ),
        (
            rf"user_distinct_(devices|countries)_{_W}",
            "this user's distinct {0} in the window",
            _distinct,
        ),
        (r"hour", "the hour of day", _hour),
        (r"day_of_week", "the day of week", _day),
        (r"is_weekend", "the day of week", _weekend),
        (r"is_night", "the time of day", _night),
        (r"hour_(sin|cos)", "the time of day", _hour_cycle),
        (
            rf"(user|merchant|device)_txn_count_{_W}",
            "this {0}'s recent transaction count",
            _agg_count,
        ),
        (
            rf"(user|merchant|device)_amount_sum_{_W}",
            "this {0}'s recent transaction total",
            _agg_sum,
        ),
        (
            rf"(user|merchant)_fraud_rate_{_W}",
            "this {0}'s recent fraud rate",
            _fraud_rate,
        ),
        (
            rf"(user|merchant)_labelled_count_{_W}",
            "this {0}'s recent labelled transactions",
            _labelled,
        ),
        (
            rf"user_amount_mean_{_W}",
            "this user's recent average amount",
            _window_mean,
        ),
        (
            rf"amount_to_user_mean_{_W}",
            "the amount against this user's recent average",
            _window_ratio,
        ),
    )
)


def generic_reason(feature: str, value: float | None) -> str:
    """The fallback for a feature no rule knows: its name and value."""
    shown = "missing" if value is None or not math.isfinite(value) else f"{value:g}"
    return f"{feature} is {shown}"


def _fact(feature: str, value: float | None, row: Row) -> str:
    for pattern, label, sentence in _RULES:
        match = pattern.fullmatch(feature)
        if match is None:
            continue
        if value is None or not math.isfinite(value):
            groups = [g.replace("_", " ") for g in match.groups()]
            return f"{label.format(*groups)} is missing"
        return sentence(match, float(value), row)
    return generic_reason(feature, value)


def reason(
    feature: str,
    value: float | None,
    contribution: float,
    row: Mapping[str, float | None],
) -> str:
    """A short sentence on what `feature` = `value` says about this transaction.

    `row` maps the transaction's other feature names to values (used for context, may
    be empty). The contribution's sign adds "(raises risk)" or "(lowers risk)".
    """
    text = _fact(feature, value, row)
    if contribution > 0:
        return f"{text} (raises risk)"
    if contribution < 0:
        return f"{text} (lowers risk)"
    return text
