"""Online features: one transaction at a time from stored per-entity state.

Each entity (user, merchant, device) has a state dict of JSON types, stored by the
caller (one row per `(entity_type, entity_id)` key). `compute` scores a
transaction from the states *before* it; `update` folds it in. Both follow the
batch rules exactly: only strictly earlier timestamps are visible (ties never see
each other) and a label of an event at s counts only once s + label_delay <= t.
Labels may arrive later through `apply_label`; they are stored with their event
and used only after the delay, so a label arriving early never leaks.

The per-feature formulas are the batch ones (`amount_features`,
`activity_features`, `temporal_features`, `fraud_rate`), in their one-transaction
plain-float form (`*_one`, checked against the array form by the tests), applied to
the sufficient statistics read from state. This module does not import pandas; only
`backfill_states` loads it, lazily, to read a DataFrame.

State layout (parallel lists sorted by time, pruned to the retention span;
`update` and `apply_label` modify states in place, O(log n) per window query):
  all:      v, type, last_ts (ns), ts [ns],
            cum [running amount total through each event], cum0 (total before ts[0])
  user:     prev_ts (latest time < last_ts), shift (first amount),
            tot [n, s1, s2] moments of amount - shift over all events,
            base [n, s1, s2] the same over events before last_ts,
            dev [device|None], loc [location|None], seen {role: {value: first ts}}
  merchant: tid [transaction id], lab [0|1|None],
            lab_ts / fraud_ts: sorted times of events with a known / fraud label
"""

from __future__ import annotations

import gc
import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ml.features.aggregation_features import EntityIndex, Timeline, fraud_rate_one
from ml.features.behavioral_features import UserValueEvents, activity_features_one
from ml.features.config import (
    MAX_TIMESTAMP,
    MIN_TIMESTAMP,
    ROLES,
    FeatureConfig,
    FeatureInputError,
    Float64Array,
    PreparedTransactions,
    apply_column_mapping,
    prepare_transactions,
    validate_amount,
)
from ml.features.registry import (
    AGG_ENTITIES,
    NEW_VALUE_ROLES,
    FeatureSpec,
    select_features,
)
from ml.features.temporal_features import temporal_features_one
from ml.features.transaction_features import amount_features_one

if TYPE_CHECKING:
    import pandas as pd

EntityKey = tuple[str, str]
State = dict[str, Any]
STATE_VERSION = 1
ENTITY_TYPES = ("user", "merchant", "device")
_ENTITY_ROLE = dict(AGG_ENTITIES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MOMENTS_ZERO = [0, 0.0, 0.0]
_US = timedelta(microseconds=1)
_MIN_NS = (MIN_TIMESTAMP - _EPOCH) // _US * 1_000
_MAX_NS = (MAX_TIMESTAMP - _EPOCH) // _US * 1_000


# ------------------------------------------------------------------ parsing


def to_epoch_ns(value: Any) -> int:
    """datetime / pandas Timestamp / numpy datetime64 / ISO string / int ns -> ns.

    Naive values are taken as UTC, as in batch.
    """
    if _is_missing(value):
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


def _is_missing(value: Any) -> bool:
    """None, NaN, pandas NA/NaT (duck-typed: this module never imports pandas)."""
    if type(value) is str:  # the common case, first
        return False
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _clean_id(value: Any) -> str | None:
    if type(value) is str:
        return value
    return None if _is_missing(value) else str(value)


def clean_label(value: Any) -> int | None:
    if _is_missing(value):
        return None
    if value in (0, 1):  # also True/False, 0.0/1.0
        return int(value)
    raise FeatureInputError(f"is_fraud must be 0 or 1, got {value!r}", "is_fraud")


class _Txn:
    __slots__ = ("t", "amount", "ids", "tid", "label")

    def __init__(self, txn: Mapping[str, Any]) -> None:
        user = _clean_id(txn.get("user_id"))
        if user is None:
            raise FeatureInputError("user_id is required", "user_id")
        if _is_missing(txn.get("amount")):
            raise FeatureInputError("amount is required", "amount")
        self.t = to_epoch_ns(txn.get("timestamp"))
        if not _MIN_NS <= self.t < _MAX_NS:
            raise FeatureInputError(
                f"timestamp {txn.get('timestamp')!r} is outside the range the features "
                f"take, {MIN_TIMESTAMP.isoformat()} to {MAX_TIMESTAMP.isoformat()}",
                "timestamp",
            )
        self.amount = validate_amount(txn["amount"])
        self.ids = {role: _clean_id(txn.get(role)) for role in _ID_FIELDS}
        self.ids["user_id"] = user
        self.tid = _clean_id(txn.get("transaction_id"))
        self.label = clean_label(txn.get("is_fraud"))

    @classmethod
    def normalized(cls, event: Mapping[str, Any]) -> _Txn:
        """From ``normalize_transaction``'s output, which is valid already."""
        p = cls.__new__(cls)
        p.t, p.amount = event["timestamp"], event["amount"]
        p.ids = {role: event.get(role) for role in _ID_FIELDS}
        p.tid, p.label = event["transaction_id"], event["is_fraud"]
        return p


_ID_FIELDS = tuple(r for r in ROLES if r not in ("amount", "timestamp", "is_fraud"))


def normalize_transaction(txn: Mapping[str, Any]) -> dict[str, Any]:
    """The fields `update` reads, as JSON types (timestamp in epoch ns): feeding this
    back to `update` changes a state exactly as the original transaction did, so it can
    be stored as an event and replayed."""
    p = _Txn(txn)
    out: dict[str, Any] = {k: v for k, v in p.ids.items() if v is not None}
    out.update(timestamp=p.t, amount=p.amount, transaction_id=p.tid, is_fraud=p.label)
    return out


# ------------------------------------------------------------------ state


def entity_key(entity_type: str, entity_id: Any) -> EntityKey:
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {entity_type!r}")
    return (entity_type, str(entity_id))


def new_state(entity_type: str, seen_roles: Iterable[str] = ()) -> State:
    state: State = {"v": STATE_VERSION, "type": entity_type, "last_ts": None}
    state.update(ts=[], cum=[], cum0=0.0)
    if entity_type == "user":
        state.update(prev_ts=None, shift=None, tot=list(_MOMENTS_ZERO))
        state.update(base=list(_MOMENTS_ZERO), dev=[], loc=[])
        state["seen"] = {role: {} for role in seen_roles}
    elif entity_type == "merchant":
        state.update(tid=[], lab=[], lab_ts=[], fraud_ts=[])
    return state


_LIST_FIELDS = ("ts", "cum", "dev", "loc", "tid", "lab", "lab_ts", "fraud_ts")
_EVENT_FIELDS = ("ts", "cum", "dev", "loc", "tid", "lab")


def copy_state(state: State) -> State:
    """A copy that shares nothing mutable with `state` (update works in place)."""
    out = dict(state)
    for name in (*_LIST_FIELDS, "tot", "base"):
        if name in out:
            out[name] = list(out[name])
    if "seen" in out:
        out["seen"] = {role: dict(values) for role, values in out["seen"].items()}
    return out


def state_to_json(state: State) -> bytes:
    """Compact UTF-8 JSON (orjson: shortest float repr, so floats round-trip exactly)."""
    return orjson.dumps(state)


def state_from_json(text: str | bytes) -> State:
    state = orjson.loads(text)
    if not isinstance(state, dict) or state.get("v") != STATE_VERSION:
        raise ValueError(f"not a feature state of version {STATE_VERSION}")
    if state.get("type") not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {state.get('type')!r}")
    return state


# ------------------------------------------------------------------ engine


class OnlineFeatureEngine:
    """Scores single transactions with the batch feature definitions.

    `available_roles`: the columns the training data had (default: all roles), so
    the engine serves exactly the training feature set (`feature_names`).
    """

    def __init__(
        self,
        config: FeatureConfig | None = None,
        available_roles: Iterable[str] | None = None,
    ) -> None:
        self.config = config or FeatureConfig()
        roles = ROLES if available_roles is None else tuple(available_roles)
        self.specs: list[FeatureSpec]
        self.specs, self.dropped = select_features(self.config, roles)
        self.feature_names = [spec.name for spec in self.specs]
        names = set(self.feature_names)
        groups = {spec.group for spec in self.specs}
        self.seen_roles = tuple(
            role for role, suffix, _ in NEW_VALUE_ROLES if f"is_new_{suffix}" in names
        )
        self._windows = self.config.window_ns if "aggregation" in groups else ()
        self._distinct = (
            self.config.distinct_window_ns if "behavioral" in groups else ()
        )
        self._fraud = (
            self.config.fraud_window_ns
            if any(n.startswith("merchant_fraud_rate_") for n in names)
            else ()
        )
        self._delay = self.config.label_delay_ns
        self.entity_types = tuple(
            entity
            for entity in ENTITY_TYPES
            if (entity == "user" and bool(groups & {"transaction", "behavioral"}))
            or any(n.startswith(f"{entity}_") for n in names)
        )
        spans = [w for _, w in self._windows]
        self.retention_ns = {
            "user": max([*spans, *(w for _, w in self._distinct), 0]),
            "merchant": max([*spans, *(self._delay + w for _, w in self._fraud), 0]),
            "device": max([*spans, 0]),
        }
        self._groups = groups

    # -- keys

    def entity_keys(self, txn: Mapping[str, Any]) -> list[EntityKey]:
        """State keys this transaction reads and writes (entities it has)."""
        keys = []
        for entity in self.entity_types:
            value = _clean_id(txn.get(_ENTITY_ROLE[entity]))
            if value is not None:
                keys.append((entity, value))
        return keys

    def _keys(self, txn: _Txn) -> list[EntityKey]:
        keys = []
        for entity in self.entity_types:
            value = txn.ids[_ENTITY_ROLE[entity]]
            if value is not None:
                keys.append((entity, value))
        return keys

    # -- scoring

    def compute(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> dict[str, float]:
        """Features of `txn` from the states before it (missing state = no history)."""
        return self._compute(_Txn(txn), states)

    def _compute(
        self, p: _Txn, states: Mapping[EntityKey, State | None]
    ) -> dict[str, float]:
        values: dict[str, float] = {}
        for entity in self.entity_types:
            entity_id = p.ids[_ENTITY_ROLE[entity]]
            state = states.get((entity, entity_id)) if entity_id is not None else None
            if entity == "user":
                self._user_values(p, state, values)
            if self._windows:
                self._window_values(entity, p, state, values)
            if entity == "merchant" and self._fraud:
                self._fraud_values(p, state, values)
        if "temporal" in self._groups:
            values.update(temporal_features_one(p.t))
        return {name: values.get(name, 0.0) for name in self.feature_names}

    def _user_values(self, p: _Txn, state: State | None, out: dict[str, float]) -> None:
        if state is None or state["last_ts"] is None:
            moments, shift, prev = _MOMENTS_ZERO, 0.0, 0
        else:
            last = state["last_ts"]
            shift = state["shift"]
            if p.t > last:
                moments, prev = state["tot"], last
            elif p.t == last:
                moments, prev = state["base"], state["prev_ts"] or 0
            else:  # late event: full history, nearest earlier retained time
                moments = state["tot"]
                hi = bisect_left(state["ts"], p.t)
                prev = state["ts"][hi - 1] if hi else state["prev_ts"] or 0
        n, s1, s2 = (float(v) for v in moments)
        if "transaction" in self._groups:
            out.update(amount_features_one(p.amount, n, s1, s2, shift or 0.0))
        if "behavioral" not in self._groups:
            return
        out.update(activity_features_one(p.t, prev, n))
        seen = state["seen"] if state is not None else {}
        for role, suffix, _ in NEW_VALUE_ROLES:
            value = p.ids[role]
            if value is None or role not in self.seen_roles:
                continue
            first = seen.get(role, {}).get(value)
            out[f"is_new_{suffix}"] = float(first is None or first >= p.t)
        if state is None:
            return
        ts = state["ts"]
        hi = bisect_left(ts, p.t)
        for column, noun in (("dev", "devices"), ("loc", "countries")):
            values = state[column]
            for name, width in self._distinct:
                lo = bisect_left(ts, p.t - width, 0, hi)
                distinct = set(values[lo:hi])  # set() on a slice runs in C
                distinct.discard(None)
                out[f"user_distinct_{noun}_{name}"] = float(len(distinct))

    def _window_values(
        self, entity: str, p: _Txn, state: State | None, out: dict[str, float]
    ) -> None:
        if state is None:
            return
        ts = state["ts"]
        hi = bisect_left(ts, p.t)
        for name, width in self._windows:
            lo = bisect_left(ts, p.t - width, 0, hi)
            out[f"{entity}_txn_count_{name}"] = float(hi - lo)
            out[f"{entity}_amount_sum_{name}"] = _range_sum(state, lo, hi)

    def _fraud_values(
        self, p: _Txn, state: State | None, out: dict[str, float]
    ) -> None:
        for name, width in self._fraud:
            labelled = fraud = 0
            if state is not None:
                labelled = self._known_in_window(state["lab_ts"], p.t, width)
                fraud = self._known_in_window(state["fraud_ts"], p.t, width)
            out[f"merchant_fraud_rate_{name}"] = fraud_rate_one(fraud, labelled)
            out[f"merchant_labelled_count_{name}"] = float(labelled)

    def _known_in_window(self, times: list[int], t: int, width: int) -> int:
        """Events at s in [t - delay - width, t - delay] with s < t."""
        hi = min(bisect_right(times, t - self._delay), bisect_left(times, t))
        return hi - bisect_left(times, t - self._delay - width, 0, hi)

    # -- state updates

    def update(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> dict[EntityKey, State]:
        """Apply `txn` to its entities' states, in place; returns every touched state
        (new ones for entities seen for the first time). Use `copy_state` first to
        keep an old version.

        A label on the transaction (`is_fraud`) is stored with it, to be used only
        after the label delay, exactly like one applied later with `apply_label`.
        """
        return self._update(_Txn(txn), states)

    def _update(
        self, p: _Txn, states: Mapping[EntityKey, State | None]
    ) -> dict[EntityKey, State]:
        out: dict[EntityKey, State] = {}
        for key in self._keys(p):
            state = states.get(key)
            if state is None:
                state = new_state(key[0], self.seen_roles)
            self._apply(key[0], state, p)
            out[key] = state
        return out

    def update_entity(
        self, key: EntityKey, txn: Mapping[str, Any], state: State | None
    ) -> State:
        """Apply `txn` to one entity's state (in place; a new state if None)."""
        if state is None:
            state = new_state(key[0], self.seen_roles)
        self._apply(key[0], state, _Txn(txn))
        return state

    def process(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> tuple[dict[str, float], dict[EntityKey, State]]:
        """compute then update: the scoring path's one call (parses `txn` once)."""
        p = _Txn(txn)
        return self._compute(p, states), self._update(p, states)

    def process_batch_matrix(
        self,
        txns: Sequence[Mapping[str, Any]],
        states: dict[EntityKey, State | None],
        *,
        normalized: bool = False,
    ) -> Float64Array:
        """``process`` for many transactions in order: their features as rows (columns
        in ``feature_names`` order) as if they were processed one by one, and
        ``states`` (every key the transactions touch, None for no history) updated in
        place, new entities added. Vectorised where the batch allows it
        (``online_batch``), one by one otherwise. ``normalized``: the transactions come
        from ``normalize_transaction`` (not checked again). A matrix, not a dict per
        transaction: the batch path scores and stores rows, and reading 10,000 dicts
        back into the model's matrix and the records' lists took 77-113 ms, measured
        apart."""
        from ml.features.online_batch import batch_features

        parse = _Txn.normalized if normalized else _Txn
        parsed = [parse(txn) for txn in txns]
        matrix = batch_features(self, parsed, states) if parsed else None
        if matrix is None:
            names = self.feature_names
            out = np.zeros((len(parsed), len(names)), dtype=np.float64)
            for i, p in enumerate(parsed):
                features = self._compute(p, states)
                out[i] = [features[name] for name in names]
                states.update(self._update(p, states))
            return out
        runs: dict[EntityKey, list[_Txn]] = {}
        for p in parsed:
            for key in self._keys(p):
                runs.setdefault(key, []).append(p)
        for key, run in runs.items():
            state = states.get(key)
            if state is None:
                state = states[key] = new_state(key[0], self.seen_roles)
            self._apply_run(key[0], state, run)
        return matrix

    def _apply_run(self, entity: str, state: State, run: Sequence[_Txn]) -> None:
        """``_apply`` of each transaction of ``run`` in turn, for a run in time order,
        none before the state's last time, without labels (what ``batch_features``
        checked): the same state, value for value, with each list extended and
        pruned once. Pruning is tracked per transaction (a running total re-based
        midway changes the sums after it), only carried out at the end."""
        ts, cum = state["ts"], state["cum"]
        retention = self.retention_ns[entity]
        last = state["last_ts"]
        cum0 = state["cum0"]
        dropped = 0  # events pruned so far (still in the lists)
        pruned_at: int | None = None  # the cutoff of the last pruning that cut events
        for p in run:
            cum.append((cum[-1] if len(cum) > dropped else cum0) + p.amount)
            ts.append(p.t)
            if last is None or p.t > last:
                last = p.t
            cutoff = last - retention
            cut = bisect_left(ts, cutoff, dropped)
            if cut > dropped:
                cum0 = cum[cut - 1]
                dropped = cut
                pruned_at = cutoff
            if len(cum) > dropped and _rebase_due(cum0, cum[-1]):
                for j in range(dropped, len(cum)):
                    cum[j] -= cum0
                cum0 = 0.0
        if entity == "user":
            state["dev"].extend(p.ids["device_id"] for p in run)
            state["loc"].extend(p.ids["location"] for p in run)
            for p in run:  # _apply_user reads the last time before the transaction
                self._apply_user(state, p)
                if state["last_ts"] is None or p.t > state["last_ts"]:
                    state["last_ts"] = p.t
        elif entity == "merchant":
            state["tid"].extend(p.tid for p in run)
            state["lab"].extend(p.label for p in run)
        state["last_ts"] = last
        state["cum0"] = cum0
        if dropped:
            for column in _EVENT_FIELDS:
                if column in state:
                    del state[column][:dropped]
        if pruned_at is not None:
            for column in ("lab_ts", "fraud_ts"):
                if column in state:
                    del state[column][: bisect_left(state[column], pruned_at)]

    def _apply(self, entity: str, state: State, p: _Txn) -> None:
        ts = state["ts"]
        last = state["last_ts"]
        row: dict[str, Any] = {"ts": p.t}
        if entity == "user":
            row["dev"], row["loc"] = p.ids["device_id"], p.ids["location"]
            self._apply_user(state, p)
        elif entity == "merchant":
            row["tid"], row["lab"] = p.tid, p.label
            if p.label is not None:
                _add_label_time(state, p.t, p.label)
        at = len(ts) if not ts or p.t >= ts[-1] else bisect_right(ts, p.t)
        cum = state["cum"]
        row["cum"] = (cum[at - 1] if at else state["cum0"]) + p.amount
        for column, value in row.items():
            state[column].insert(at, value)
        for j in range(at + 1, len(cum)):  # only for late (out-of-order) events
            cum[j] += p.amount
        if last is None or p.t > last:
            state["last_ts"] = p.t
        _prune(state, state["last_ts"] - self.retention_ns[entity])

    def _apply_user(self, state: State, p: _Txn) -> None:
        last = state["last_ts"]
        if state["shift"] is None:
            state["shift"] = p.amount
        x = p.amount - state["shift"]
        if last is None or p.t > last:
            state["base"] = list(state["tot"])
            state["prev_ts"] = last
        elif p.t < last:  # late event: it belongs before the latest timestamp
            state["base"] = _add_moment(state["base"], x)
            if state["prev_ts"] is None or p.t > state["prev_ts"]:
                state["prev_ts"] = p.t
        state["tot"] = _add_moment(state["tot"], x)
        seen = state["seen"]
        for role in self.seen_roles:
            value = p.ids[role]
            if value is not None:
                first = seen.setdefault(role, {}).get(value)
                if first is None or p.t < first:
                    seen[role][value] = p.t

    def apply_label(self, state: State, transaction_id: str, label: Any) -> State:
        """Record a (late) label on a merchant state, in place; returns the state.

        Unknown or already pruned transactions leave the state unchanged.
        """
        value = clean_label(label)
        tids = state.get("tid")
        if not tids:
            return state
        try:
            i = tids.index(str(transaction_id))
        except ValueError:
            return state
        old = state["lab"][i]
        if old != value:
            if old is not None:
                _remove_label_time(state, state["ts"][i], old)
            if value is not None:
                _add_label_time(state, state["ts"][i], value)
            state["lab"][i] = value
        return state


def _add_moment(moments: list[Any], x: float) -> list[Any]:
    n, s1, s2 = moments
    return [n + 1, s1 + x, s2 + x * x]


def _range_sum(state: State, lo: int, hi: int) -> float:
    """Amount total of events [lo, hi) from the running totals."""
    if hi <= lo:
        return 0.0
    cum = state["cum"]
    total: float = cum[hi - 1] - (cum[lo - 1] if lo else state["cum0"])
    return total


def _add_label_time(state: State, t: int, label: int) -> None:
    insort(state["lab_ts"], t)
    if label == 1:
        insort(state["fraud_ts"], t)


def _remove_label_time(state: State, t: int, label: int) -> None:
    for column in ("lab_ts", "fraud_ts") if label == 1 else ("lab_ts",):
        times = state[column]
        del times[bisect_left(times, t)]


# Running totals are re-based when their base dwarfs the retained total, to keep
# their rounding error relative to the window sums they serve.
_REBASE_RATIO = 4.0


def _rebase_due(base: float, last_total: float) -> bool:
    """Whether running totals ending at ``last_total`` above ``base`` (the total before
    the first retained event) should be re-based to 0."""
    return base > _REBASE_RATIO * max(last_total - base, 1.0)


def _prune(state: State, cutoff: int) -> None:
    ts = state["ts"]
    cut = bisect_left(ts, cutoff)
    if cut:
        state["cum0"] = state["cum"][cut - 1]
        for column in _EVENT_FIELDS:
            if column in state:
                del state[column][:cut]
        for column in ("lab_ts", "fraud_ts"):
            if column in state:
                del state[column][: bisect_left(state[column], cutoff)]
    cum, base = state["cum"], state["cum0"]
    if cum and _rebase_due(base, cum[-1]):
        state["cum"] = [value - base for value in cum]
        state["cum0"] = 0.0


# ------------------------------------------------------------------ backfill


def backfill_states(
    df: pd.DataFrame,
    config: FeatureConfig | None = None,
    as_of: Any = None,
    *,
    column_mapping: Mapping[str, str] | None = None,
    available_roles: Iterable[str] | None = None,
) -> dict[EntityKey, State]:
    """States equal to replaying `df` (rows with timestamp < as_of) through `update`.

    Vectorised per entity, so a freshly deployed model scores its first
    transaction with full history. Labels in `is_fraud` are stored with their
    events (used only after the label delay, as always).
    """
    data = prepare_transactions(apply_column_mapping(df, column_mapping))
    if as_of is not None:
        data = _rows_before(data, to_epoch_ns(as_of))
    roles = data.roles if available_roles is None else available_roles
    engine = OnlineFeatureEngine(config, roles)
    if data.n == 0:
        return {}
    timeline = Timeline(data)
    states: dict[EntityKey, State] = {}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small containers, no cycles: skip repeated full scans
    try:
        _backfill_into(states, data, timeline, engine)
    finally:
        if gc_was_enabled:
            gc.enable()
    return states


def _backfill_into(
    states: dict[EntityKey, State],
    data: PreparedTransactions,
    timeline: Timeline,
    engine: OnlineFeatureEngine,
) -> None:
    for entity in engine.entity_types:
        role = _ENTITY_ROLE[entity]
        if role not in data.categorical:
            continue
        index = timeline.entity(role)
        if index.rows.size == 0:
            continue
        builder = _Backfill(data, index, engine.retention_ns[entity])
        ids = data.categorical[role].uniques
        if entity == "user":
            built = builder.users(engine.seen_roles)
        elif entity == "merchant":
            built = builder.merchants()
        else:
            built = builder.plain("device")
        for code, state in built:
            states[(entity, ids[code])] = state


def _rows_before(data: PreparedTransactions, cutoff: int) -> PreparedTransactions:
    keep = data.ts < cutoff
    return PreparedTransactions(
        transaction_id=data.transaction_id[keep],
        ts=data.ts[keep],
        amount=data.amount[keep],
        label=None if data.label is None else data.label[keep],
        categorical={
            role: type(col)(col.codes[keep], col.uniques)
            for role, col in data.categorical.items()
        },
        roles=data.roles,
    )


class _Backfill:
    """Builds one entity type's states from its (entity, time)-sorted index."""

    def __init__(
        self, data: PreparedTransactions, index: EntityIndex, retention: int
    ) -> None:
        self.data, self.index = data, index
        n = index.rows.shape[0]
        self.starts = np.flatnonzero(index.seg_first)
        self.ends = np.append(self.starts[1:], n)
        self.last_ts = index.ts[self.ends - 1]
        # each entity keeps its events at times >= its own last time - retention
        keep = index.ts >= np.repeat(self.last_ts, self.ends - self.starts) - retention
        kept_per_entity = np.add.reduceat(keep.astype(np.int64), self.starts)
        self.keep_from = (self.ends - kept_per_entity).tolist()
        self.codes = index.code[self.starts].tolist()
        self.amount = index.sorted_values(data.amount).astype(np.float64)

    def _lookup(self, role: str) -> list[Any]:
        col = self.data.categorical.get(role)
        if col is None:
            return [None] * self.index.rows.shape[0]
        names = np.array([*col.uniques, None], dtype=object)
        result: list[Any] = names[col.codes[self.index.rows]].tolist()
        return result

    def plain(self, entity: str) -> Iterable[tuple[int, State]]:
        ts = self.index.ts.tolist()
        cum = self.index.prefix(self.amount).tolist()
        starts = self.starts.tolist()
        extra = self._extra_columns(entity)
        for i, code in enumerate(self.codes):
            a, b = self.keep_from[i], int(self.ends[i])
            state = new_state(entity)
            state["last_ts"] = ts[b - 1]
            state["ts"], state["cum"] = ts[a:b], cum[a:b]
            state["cum0"] = cum[a - 1] if a > starts[i] else 0.0
            for column, values in extra.items():
                state[column] = values[a:b]
            if entity == "merchant":
                events = list(zip(state["ts"], state["lab"], strict=True))
                state["lab_ts"] = [t for t, label in events if label is not None]
                state["fraud_ts"] = [t for t, label in events if label == 1]
            yield code, state

    def _extra_columns(self, entity: str) -> dict[str, list[Any]]:
        if entity == "merchant":
            labels: list[Any] = [None] * self.index.rows.shape[0]
            if self.data.label is not None:
                raw = self.data.label[self.index.rows]
                labels = [None if math.isnan(v) else int(v) for v in raw.tolist()]
            tids = self.data.transaction_id[self.index.rows].tolist()
            return {"tid": tids, "lab": labels}
        if entity == "user":
            return {"dev": self._lookup("device_id"), "loc": self._lookup("location")}
        return {}

    def merchants(self) -> Iterable[tuple[int, State]]:
        return self.plain("merchant")

    def users(self, seen_roles: tuple[str, ...]) -> Iterable[tuple[int, State]]:
        index = self.index
        shifted = self.amount - self.amount[index.seg_start]
        c1 = index.prefix(shifted)
        c2 = index.prefix(shifted * shifted)
        last = self.ends - 1
        tie = index.tie_start[last]
        before = tie - 1
        has_base = tie > self.starts
        base1 = np.where(has_base, c1[np.maximum(before, 0)], 0.0).tolist()
        base2 = np.where(has_base, c2[np.maximum(before, 0)], 0.0).tolist()
        prev = index.ts[np.maximum(before, 0)].tolist()
        tot1, tot2 = c1[last].tolist(), c2[last].tolist()
        n_all = (self.ends - self.starts).tolist()
        n_base = (tie - self.starts).tolist()
        shift = self.amount[self.starts].tolist()
        seen = {role: self._first_seen(role) for role in seen_roles}
        for i, (code, state) in enumerate(self.plain("user")):
            state["shift"] = shift[i]
            state["tot"] = [n_all[i], tot1[i], tot2[i]]
            state["base"] = [n_base[i], base1[i], base2[i]]
            state["prev_ts"] = prev[i] if has_base[i] else None
            state["seen"] = {role: seen[role].get(code, {}) for role in seen_roles}
            yield code, state

    def _first_seen(self, role: str) -> dict[int, dict[str, int]]:
        """{user code: {value: first time}} for one role."""
        col = self.data.categorical.get(role)
        if col is None:
            return {}
        timeline = self.index.timeline
        events = UserValueEvents(
            timeline, self.data.categorical["user_id"].codes, col.codes
        )
        pair_user = events.pair_user.tolist()
        names = np.array(col.uniques, dtype=object)
        pair_value = names[events.pair_value].tolist()
        first_ts = timeline.unique[events.first_rank].tolist()
        out: dict[int, dict[str, int]] = {}
        start = 0
        for end in range(1, len(pair_user) + 1):
            if end == len(pair_user) or pair_user[end] != pair_user[start]:
                out[pair_user[start]] = dict(
                    zip(pair_value[start:end], first_ts[start:end], strict=True)
                )
                start = end
        return out
