"""Online states built from a DataFrame of history, equal to replaying it row by row.

Vectorised per entity type, so a freshly deployed model scores its first transaction
with full history. pandas is only read here (`prepare_transactions`), never imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.features.aggregation_features import EntityIndex, Timeline
from ml.features.behavioral_features import UserValueEvents
from ml.features.config import (
    FeatureConfig,
    PreparedTransactions,
    apply_column_mapping,
    prepare_transactions,
)
from ml.features.online_compute import ENTITY_ROLE, OnlinePlan
from ml.features.online_event import to_epoch_ns
from ml.features.online_state import EntityKey, State, new_state

if TYPE_CHECKING:
    import pandas as pd


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
    plan = OnlinePlan(config, roles)
    if data.n == 0:
        return {}
    timeline = Timeline(data)
    states: dict[EntityKey, State] = {}
    _backfill_into(states, data, timeline, plan)
    return states


def _backfill_into(
    states: dict[EntityKey, State],
    data: PreparedTransactions,
    timeline: Timeline,
    plan: OnlinePlan,
) -> None:
    for entity in plan.entity_types:
        role = ENTITY_ROLE[entity]
        if role not in data.categorical:
            continue
        index = timeline.entity(role)
        if index.rows.size == 0:
            continue
        builder = _Backfill(
            data, index, plan.retention_ns[entity], entity in plan.labelled
        )
        ids = data.categorical[role].uniques
        if entity == "user":
            built = builder.users(plan.seen_roles)
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
        self,
        data: PreparedTransactions,
        index: EntityIndex,
        retention: int,
        labelled: bool,
    ) -> None:
        self.data, self.index, self.labelled = data, index, labelled
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
            state = new_state(entity, labelled=(entity,) if self.labelled else ())
            state["last_ts"] = ts[b - 1]
            state["ts"], state["cum"] = ts[a:b], cum[a:b]
            state["cum0"] = cum[a - 1] if a > starts[i] else 0.0
            for column, values in extra.items():
                state[column] = values[a:b]
            if self.labelled:
                events = list(zip(state["ts"], state["lab"], strict=True))
                state["lab_ts"] = [t for t, label in events if label is not None]
                state["fraud_ts"] = [t for t, label in events if label == 1]
            yield code, state

    def _extra_columns(self, entity: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        if entity == "user":
            out.update(dev=self._lookup("device_id"), loc=self._lookup("location"))
        if self.labelled:
            labels: list[Any] = [None] * self.index.rows.shape[0]
            if self.data.label is not None:
                raw = self.data.label[self.index.rows]
                labels = [None if math.isnan(v) else int(v) for v in raw.tolist()]
            tids = self.data.transaction_id[self.index.rows].tolist()
            out.update(tid=tids, lab=labels)
        return out

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
