"""Features of one transaction from the entity states before it.

`OnlinePlan` decides, once per configuration, which features are served, which
entity types hold state and how long each keeps its events; `features_one` reads
the states (never changing them) and applies the batch formulas (`amount_features`,
`activity_features`, `temporal_features`, `fraud_rate`) in their one-transaction
plain-float form (`*_one`, checked against the array form by the tests). The batch
rules hold: only strictly earlier timestamps are visible (ties never see each
other) and a label of an event at s counts only once s + label_delay <= t.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

from ml.features.aggregation_features import fraud_rate_one, window_mean_features_one
from ml.features.behavioral_features import activity_features_one
from ml.features.config import ROLES, FeatureConfig
from ml.features.online_event import Txn, clean_id
from ml.features.online_state import ENTITY_TYPES, EntityKey, State, range_sum
from ml.features.registry import (
    AGG_ENTITIES,
    NEW_VALUE_ROLES,
    FeatureSpec,
    select_features,
)
from ml.features.temporal_features import temporal_features_one
from ml.features.transaction_features import amount_features_one

ENTITY_ROLE = dict(AGG_ENTITIES)
_NO_MOMENTS = (0, 0.0, 0.0)
Windows = tuple[tuple[str, int], ...]


class OnlinePlan:
    """What the online features of one configuration need.

    `available_roles`: the columns the training data had (default: all roles), so the
    plan serves exactly the training feature set (`feature_names`). `windows`,
    `distinct`, `fraud`: (name, width in ns) of the windows actually served.
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
        self.windows: Windows = self.config.window_ns if "aggregation" in groups else ()
        self.distinct: Windows = (
            self.config.distinct_window_ns if "behavioral" in groups else ()
        )
        # the fraud-rate windows served, per entity type
        self.fraud: dict[str, Windows] = {
            entity: windows
            for entity, windows in (
                ("merchant", self.config.fraud_window_ns),
                ("user", self.config.user_fraud_window_ns),
            )
            if any(n.startswith(f"{entity}_fraud_rate_") for n in names)
        }
        self.ratio: Windows = (
            self.config.ratio_window_ns
            if any(n.startswith("user_amount_mean_") for n in names)
            else ()
        )
        self.delay = self.config.label_delay_ns
        self.entity_types = tuple(
            entity
            for entity in ENTITY_TYPES
            if (entity == "user" and bool(groups & {"transaction", "behavioral"}))
            or any(n.startswith(f"{entity}_") for n in names)
        )
        # entity types whose states keep their events' labels: merchants always (the
        # layout stored states have), users when their fraud rate is served
        self.labelled = ("merchant", "user") if "user" in self.fraud else ("merchant",)
        spans = [w for _, w in self.windows]

        def labels(entity: str) -> list[int]:
            return [self.delay + w for _, w in self.fraud.get(entity, ())]

        self.retention_ns = {
            "user": max(
                [
                    *spans,
                    *(w for _, w in self.distinct),
                    *(w for _, w in self.ratio),
                    *labels("user"),
                    0,
                ]
            ),
            "merchant": max([*spans, *labels("merchant"), 0]),
            "device": max([*spans, 0]),
        }
        self.groups = groups

    def entity_keys(self, txn: Mapping[str, Any]) -> list[EntityKey]:
        """State keys this transaction reads and writes (entities it has)."""
        keys = []
        for entity in self.entity_types:
            value = clean_id(txn.get(ENTITY_ROLE[entity]))
            if value is not None:
                keys.append((entity, value))
        return keys

    def keys(self, txn: Txn) -> list[EntityKey]:
        """`entity_keys` of a parsed transaction."""
        keys = []
        for entity in self.entity_types:
            value = txn.ids[ENTITY_ROLE[entity]]
            if value is not None:
                keys.append((entity, value))
        return keys

    def known_in_window(self, times: list[int], t: int, width: int) -> int:
        """Events at s in [t - delay - width, t - delay] with s < t."""
        hi = min(bisect_right(times, t - self.delay), bisect_left(times, t))
        return hi - bisect_left(times, t - self.delay - width, 0, hi)


def features_one(
    plan: OnlinePlan, p: Txn, states: Mapping[EntityKey, State | None]
) -> dict[str, float]:
    """Features of `p` from the states before it (missing state = no history)."""
    values: dict[str, float] = {}
    for entity in plan.entity_types:
        entity_id = p.ids[ENTITY_ROLE[entity]]
        state = states.get((entity, entity_id)) if entity_id is not None else None
        if entity == "user":
            _user_values(plan, p, state, values)
            if plan.ratio:
                _ratio_values(plan, p, state, values)
        if plan.windows:
            _window_values(plan, entity, p, state, values)
        if entity in plan.fraud:
            _fraud_values(plan, entity, p, state, values)
    if "temporal" in plan.groups:
        values.update(temporal_features_one(p.t))
    return {name: values.get(name, 0.0) for name in plan.feature_names}


def _user_values(
    plan: OnlinePlan, p: Txn, state: State | None, out: dict[str, float]
) -> None:
    moments: Iterable[Any]
    if state is None or state["last_ts"] is None:
        moments, shift, prev = _NO_MOMENTS, 0.0, 0
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
    if "transaction" in plan.groups:
        out.update(amount_features_one(p.amount, n, s1, s2, shift or 0.0))
    if "behavioral" not in plan.groups:
        return
    out.update(activity_features_one(p.t, prev, n))
    seen = state["seen"] if state is not None else {}
    for role, suffix, _ in NEW_VALUE_ROLES:
        value = p.ids[role]
        if value is None or role not in plan.seen_roles:
            continue
        first = seen.get(role, {}).get(value)
        out[f"is_new_{suffix}"] = float(first is None or first >= p.t)
    if state is None:
        return
    ts = state["ts"]
    hi = bisect_left(ts, p.t)
    for column, noun in (("dev", "devices"), ("loc", "countries")):
        values = state[column]
        for name, width in plan.distinct:
            lo = bisect_left(ts, p.t - width, 0, hi)
            distinct = set(values[lo:hi])  # set() on a slice runs in C
            distinct.discard(None)
            out[f"user_distinct_{noun}_{name}"] = float(len(distinct))


def _window_values(
    plan: OnlinePlan, entity: str, p: Txn, state: State | None, out: dict[str, float]
) -> None:
    if state is None:
        return
    ts = state["ts"]
    hi = bisect_left(ts, p.t)
    for name, width in plan.windows:
        lo = bisect_left(ts, p.t - width, 0, hi)
        out[f"{entity}_txn_count_{name}"] = float(hi - lo)
        out[f"{entity}_amount_sum_{name}"] = range_sum(state, lo, hi)


def _ratio_values(
    plan: OnlinePlan, p: Txn, state: State | None, out: dict[str, float]
) -> None:
    ts = state["ts"] if state is not None else []
    hi = bisect_left(ts, p.t)
    for name, width in plan.ratio:
        lo = bisect_left(ts, p.t - width, 0, hi)
        total = range_sum(state, lo, hi) if state is not None else 0.0
        out.update(window_mean_features_one(p.amount, float(hi - lo), total, name))


def _fraud_values(
    plan: OnlinePlan, entity: str, p: Txn, state: State | None, out: dict[str, float]
) -> None:
    for name, width in plan.fraud[entity]:
        labelled = fraud = 0
        if state is not None:
            labelled = plan.known_in_window(state["lab_ts"], p.t, width)
            fraud = plan.known_in_window(state["fraud_ts"], p.t, width)
        out[f"{entity}_fraud_rate_{name}"] = fraud_rate_one(fraud, labelled)
        out[f"{entity}_labelled_count_{name}"] = float(labelled)
