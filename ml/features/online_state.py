"""Per-entity online state: its layout, its JSON form, and folding a transaction in.

Each entity (user, merchant, device) has a state dict of JSON types, stored by the
caller (one row per `(entity_type, entity_id)` key). Folding follows the batch rules:
a state keeps the events a window query can still see (pruned to the retention span)
and the labels stored with their events, used only after the label delay by the
feature computation (`online_compute`), which reads states and never changes them.

State layout (parallel lists sorted by time, pruned to the retention span;
`StateFolder.apply` and `apply_label` modify states in place):
  all:      v, type, last_ts (ns), ts [ns],
            cum [running amount total through each event], cum0 (total before ts[0])
  user:     prev_ts (latest time < last_ts), shift (first amount),
            tot [n, s1, s2] moments of amount - shift over all events,
            base [n, s1, s2] the same over events before last_ts,
            dev [device|None], loc [location|None], seen {role: {value: first ts}}
  labelled (merchant; user when the user's fraud rate is served):
            tid [transaction id], lab [0|1|None],
            lab_ts / fraud_ts: sorted times of events with a known / fraud label
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ml.features.online_event import Txn, clean_label

EntityKey = tuple[str, str]
State = dict[str, Any]
STATE_VERSION = 1
ENTITY_TYPES = ("user", "merchant", "device")
_MOMENTS_ZERO = (0, 0.0, 0.0)


def entity_key(entity_type: str, entity_id: Any) -> EntityKey:
    if entity_type not in ENTITY_TYPES:
        raise ValueError(f"unknown entity type {entity_type!r}")
    return (entity_type, str(entity_id))


def new_state(
    entity_type: str,
    seen_roles: Iterable[str] = (),
    labelled: Iterable[str] = ("merchant",),
) -> State:
    """An empty state; `labelled`: the entity types whose states keep labels."""
    state: State = {"v": STATE_VERSION, "type": entity_type, "last_ts": None}
    state.update(ts=[], cum=[], cum0=0.0)
    if entity_type == "user":
        state.update(prev_ts=None, shift=None, tot=list(_MOMENTS_ZERO))
        state.update(base=list(_MOMENTS_ZERO), dev=[], loc=[])
        state["seen"] = {role: {} for role in seen_roles}
    if entity_type in labelled:
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


class StateFolder:
    """Folds transactions into states, in place: `retention_ns` per entity type (events
    older than the latest time minus it are pruned), `seen_roles` whose first-seen
    values a user state records, `labelled` entity types whose states keep labels
    (a state keeps them when it has the `tid` field)."""

    def __init__(
        self,
        retention_ns: Mapping[str, int],
        seen_roles: tuple[str, ...],
        labelled: tuple[str, ...] = ("merchant",),
    ) -> None:
        self.retention_ns = retention_ns
        self.seen_roles = seen_roles
        self.labelled = labelled

    def new(self, entity: str) -> State:
        return new_state(entity, self.seen_roles, self.labelled)

    def apply_run(self, entity: str, state: State, run: Sequence[Txn]) -> None:
        """``apply`` of each transaction of ``run`` in turn, for a run in time order,
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
        if "tid" in state:
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

    def apply(self, entity: str, state: State, p: Txn) -> None:
        ts = state["ts"]
        last = state["last_ts"]
        row: dict[str, Any] = {"ts": p.t}
        if entity == "user":
            row["dev"], row["loc"] = p.ids["device_id"], p.ids["location"]
            self._apply_user(state, p)
        if "tid" in state:
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

    def _apply_user(self, state: State, p: Txn) -> None:
        last = state["last_ts"]
        if state["shift"] is None:
            state["shift"] = p.amount
        x = p.amount - state["shift"]
        if last is None or p.t > last:
            state["base"] = list(state["tot"])
            state["prev_ts"] = last
        elif p.t < last:  # late event: it belongs before the latest timestamp
            state["base"] = add_moment(state["base"], x)
            if state["prev_ts"] is None or p.t > state["prev_ts"]:
                state["prev_ts"] = p.t
        state["tot"] = add_moment(state["tot"], x)
        seen = state["seen"]
        for role in self.seen_roles:
            value = p.ids[role]
            if value is not None:
                first = seen.setdefault(role, {}).get(value)
                if first is None or p.t < first:
                    seen[role][value] = p.t


def apply_label(state: State, transaction_id: str, label: Any) -> State:
    """Record a (late) label on a state that keeps labels, in place; returns it.

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


def add_moment(moments: list[Any], x: float) -> list[Any]:
    n, s1, s2 = moments
    return [n + 1, s1 + x, s2 + x * x]


def range_sum(state: State, lo: int, hi: int) -> float:
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
