"""Features of a whole batch of transactions at once, equal to scoring them one by one.

Every transaction of a batch gets its features from the entity states *before* the
batch plus the batch's own earlier transactions: window counts and sums with numpy per
entity type, the amount and calendar formulas in their array form, and the few features
that need per-value bookkeeping (first-seen values, distinct devices and countries,
merchant and user labels) in one plain loop per entity. States are read, never changed: the
caller folds the batch in afterwards (``StateFolder.apply_run``).

This holds when each entity's transactions in the batch are in time order, none before
the entity's latest state time, and none carries a label: "earlier in the batch" then
means "earlier in time", and the batch rules (only strictly earlier times are visible,
ties never see each other) give the same features as one by one. Otherwise
``batch_features`` returns None and the caller goes one by one. Window sums may differ
from the one-by-one path in the last bits, where that path re-based its running totals
between two transactions of the batch.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from ml.features.aggregation_features import fraud_rate, window_mean_features
from ml.features.behavioral_features import activity_features
from ml.features.config import Float64Array, Int64Array
from ml.features.online_compute import ENTITY_ROLE, OnlinePlan
from ml.features.online_event import Txn
from ml.features.online_state import EntityKey, State, add_moment
from ml.features.registry import NEW_VALUE_ROLES
from ml.features.temporal_features import temporal_features
from ml.features.transaction_features import amount_features

_NO_TIME = np.iinfo(np.int64).min
_KEY_LIMIT = 1 << 62  # entity code * time span must stay below int64's range


class _Entities:
    """The batch's transactions of one entity type, grouped by entity (codes in order of
    first appearance), each group in batch order."""

    def __init__(
        self,
        entity: str,
        txns: Sequence[Txn],
        t: Int64Array,
        states: Mapping[EntityKey, State | None],
    ) -> None:
        role = ENTITY_ROLE[entity]
        index: dict[str, int] = {}
        rows: list[int] = []
        codes: list[int] = []
        for i, p in enumerate(txns):
            value = p.ids[role]
            if value is not None:
                rows.append(i)
                codes.append(index.setdefault(value, len(index)))
        order = np.argsort(np.asarray(codes, dtype=np.int64), kind="stable")
        self.rows: Int64Array = np.asarray(rows, dtype=np.int64)[order]
        self.code: Int64Array = np.asarray(codes, dtype=np.int64)[order]
        self.ts: Int64Array = t[self.rows]
        self.states: list[State | None] = [states.get((entity, v)) for v in index]
        size = self.rows.size
        at = np.arange(size)
        self.first = np.ones(size, dtype=bool)
        self.first[1:] = self.code[1:] != self.code[:-1]
        self.seg_start: Int64Array = np.maximum.accumulate(np.where(self.first, at, 0))
        new_time = self.first.copy()
        new_time[1:] |= self.ts[1:] != self.ts[:-1]
        self.tie_start: Int64Array = np.maximum.accumulate(np.where(new_time, at, 0))

    def in_order(self) -> bool:
        """Each entity's transactions in time order, none before its state's last time."""
        if np.any((self.ts[1:] < self.ts[:-1]) & ~self.first[1:]):
            return False
        last = np.array(
            [
                _NO_TIME if s is None or s["last_ts"] is None else s["last_ts"]
                for s in self.states
            ],
            dtype=np.int64,
        )
        return not np.any(self.ts[self.first] < last[self.code[self.first]])

    def scatter(self, values: Float64Array, n: int) -> Float64Array:
        out = np.zeros(n, dtype=np.float64)
        out[self.rows] = values
        return out


def batch_features(
    plan: OnlinePlan,
    txns: Sequence[Txn],
    states: Mapping[EntityKey, State | None],
) -> Float64Array | None:
    """The features of each transaction (rows in batch order, columns in
    ``plan.feature_names`` order), or None when the batch does not qualify (see the
    module docstring). ``states`` are read, never modified."""
    if any(p.label is not None for p in txns):
        return None
    n = len(txns)
    t = np.fromiter((p.t for p in txns), dtype=np.int64, count=n)
    amount = np.fromiter((p.amount for p in txns), dtype=np.float64, count=n)
    groups: dict[str, _Entities] = {}
    for entity in plan.entity_types:
        group = _Entities(entity, txns, t, states)
        if not group.in_order():
            return None
        groups[entity] = group
    values: dict[str, Float64Array] = {}
    if "temporal" in plan.groups:
        values.update(temporal_features(t))
    if "user" in groups:
        values.update(_user_features(plan, groups["user"], txns, amount))
    for entity, group in groups.items():
        if plan.windows or (entity == "user" and plan.ratio):
            found = _window_features(plan, entity, group, amount, n)
            if found is None:
                return None
            values.update(found)
        if entity in plan.fraud:
            values.update(_fraud_features(plan, entity, group, n))
    out = np.zeros((n, len(plan.feature_names)), dtype=np.float64)
    for j, name in enumerate(plan.feature_names):
        column = values.get(name)
        if column is not None:
            out[:, j] = column
    return out


# ------------------------------------------------------------------ user


def _user_features(
    plan: OnlinePlan,
    users: _Entities,
    txns: Sequence[Txn],
    amount: Float64Array,
) -> dict[str, Float64Array]:
    """Amount, activity, first-seen and distinct-value features. The moments and the
    first-seen values follow each user through the batch exactly as ``StateFolder.apply``
    would, so they are the one-by-one values, not just close to them."""
    n = len(txns)
    size = users.rows.size
    moments = np.zeros((size, 3), dtype=np.float64)
    shift = np.zeros(size, dtype=np.float64)
    prev = np.zeros(size, dtype=np.int64)
    behavioral = "behavioral" in plan.groups
    seen_roles = plan.seen_roles if behavioral else ()
    new_values: dict[str, list[float]] = {role: [0.0] * size for role in seen_roles}
    distinct = plan.distinct if behavioral else ()
    counts: dict[str, list[float]] = {
        f"user_distinct_{noun}_{name}": [0.0] * size
        for noun in ("devices", "countries")
        for name, _ in distinct
    }
    rows = users.rows.tolist()
    times = users.ts.tolist()
    first_flags = users.first.tolist()
    codes = users.code.tolist()
    amounts = amount[users.rows].tolist()
    for r in range(size):
        if first_flags[r]:
            state = users.states[codes[r]]
            if state is None:
                tot, base = [0, 0.0, 0.0], [0, 0.0, 0.0]
                last = prev_ts = user_shift = None
                seen: Mapping[str, Mapping[str, int]] = {}
                hist_ts: list[int] = []
                hist_dev: list[Any] = []
                hist_loc: list[Any] = []
            else:
                tot, base = state["tot"], state["base"]
                last, prev_ts, user_shift = (
                    state["last_ts"],
                    state["prev_ts"],
                    state["shift"],
                )
                seen = state["seen"]
                hist_ts, hist_dev, hist_loc = (
                    list(state["ts"]),
                    list(state["dev"]),
                    list(state["loc"]),
                )
            batch_first: dict[tuple[str, str], int] = {}
        p = txns[rows[r]]
        tr = times[r]
        # -- features from the history so far (as online_compute)
        if last is None:
            moments[r] = (0.0, 0.0, 0.0)
        elif tr > last:
            moments[r] = tot
            prev[r] = last
            shift[r] = user_shift or 0.0
        else:  # tr == last: the in_order check rules out earlier times
            moments[r] = base
            prev[r] = prev_ts or 0
            shift[r] = user_shift or 0.0
        for role in seen_roles:
            value = p.ids[role]
            if value is None:
                continue
            first = seen.get(role, {}).get(value)
            in_batch = batch_first.get((role, value))
            if in_batch is not None and (first is None or in_batch < first):
                first = in_batch
            new_values[role][r] = float(first is None or first >= tr)
            batch_first.setdefault((role, value), tr)
        if distinct:
            hi = bisect_left(hist_ts, tr)
            for column, noun in ((hist_dev, "devices"), (hist_loc, "countries")):
                for name, width in distinct:
                    lo = bisect_left(hist_ts, tr - width, 0, hi)
                    found = set(column[lo:hi])
                    found.discard(None)
                    counts[f"user_distinct_{noun}_{name}"][r] = float(len(found))
            hist_ts.append(tr)
            hist_dev.append(p.ids["device_id"])
            hist_loc.append(p.ids["location"])
        # -- fold the transaction in (as StateFolder.apply)
        a = amounts[r]
        if user_shift is None:
            user_shift = a
        x = a - user_shift
        if last is None or tr > last:
            base = tot
            prev_ts = last
            last = tr
        tot = add_moment(tot, x)
    out: dict[str, Float64Array] = {}
    if "transaction" in plan.groups:
        found_amount = amount_features(
            amount[users.rows], moments[:, 0], moments[:, 1], moments[:, 2], shift
        )
        out.update({k: users.scatter(v, n) for k, v in found_amount.items()})
    if behavioral:
        found_activity = activity_features(users.ts, prev, moments[:, 0])
        out.update({k: users.scatter(v, n) for k, v in found_activity.items()})
        for role, suffix, _ in NEW_VALUE_ROLES:
            if role in new_values:
                out[f"is_new_{suffix}"] = users.scatter(
                    np.asarray(new_values[role], dtype=np.float64), n
                )
        for name, column_values in counts.items():
            out[name] = users.scatter(np.asarray(column_values, dtype=np.float64), n)
    return out


# ------------------------------------------------------------------ windows


def _window_features(
    plan: OnlinePlan,
    entity: str,
    group: _Entities,
    amount: Float64Array,
    n: int,
) -> dict[str, Float64Array] | None:
    """Counts and amount sums over each window (for users, also the window means of
    ``plan.ratio``): the entity's retained events (its state) followed by its batch
    transactions form one sorted timeline per entity, and each window is two searches
    in it. None if the times span too far to search.
    Nothing (every count and sum 0) when no transaction of the batch has the entity."""
    if group.rows.size == 0:
        return {}
    states = group.states
    m = len(states)
    state_len = np.array(
        [0 if s is None else len(s["ts"]) for s in states], dtype=np.int64
    )
    batch_len = np.bincount(group.code, minlength=m)
    total = state_len + batch_len
    starts = np.zeros(m, dtype=np.int64)
    np.cumsum(total[:-1], out=starts[1:])
    size = int(total.sum())
    line_t = np.empty(size, dtype=np.int64)
    line_cum = np.empty(size, dtype=np.float64)
    held = int(state_len.sum())
    if held:
        state_off = np.zeros(m, dtype=np.int64)
        np.cumsum(state_len[:-1], out=state_off[1:])
        where = np.arange(held) + np.repeat(starts - state_off, state_len)
        kept = [s for s in states if s is not None]
        line_t[where] = np.fromiter(
            chain.from_iterable(s["ts"] for s in kept), dtype=np.int64, count=held
        )
        line_cum[where] = np.fromiter(
            chain.from_iterable(s["cum"] for s in kept), dtype=np.float64, count=held
        )
    at = np.arange(group.rows.size)
    batch_at = starts[group.code] + state_len[group.code] + (at - group.seg_start)
    line_t[batch_at] = group.ts
    line_cum[batch_at] = _running_totals(group, amount, states)
    cum0 = np.array([0.0 if s is None else s["cum0"] for s in states])
    line_code = np.repeat(np.arange(m), total)
    seg_lo = starts[group.code]
    ratio = plan.ratio if entity == "user" else ()
    windows = plan.windows + ratio
    queries = [group.ts] + [group.ts - width for _, width in windows]
    found = first_at_or_after(line_code, line_t, group.code, queries)
    if found is None:
        return None
    hi, lows = found[0], found[1:]
    out: dict[str, Float64Array] = {}
    end = line_cum[np.maximum(hi - 1, 0)]
    for i, ((name, _), lo) in enumerate(zip(windows, lows, strict=True)):
        before = np.where(
            lo > seg_lo, line_cum[np.maximum(lo - 1, 0)], cum0[group.code]
        )
        total_in = np.where(hi > lo, end - before, 0.0)
        count = (hi - lo).astype(np.float64)
        if i >= len(plan.windows):
            means = window_mean_features(amount[group.rows], count, total_in, name)
            out.update({k: group.scatter(v, n) for k, v in means.items()})
            continue
        out[f"{entity}_txn_count_{name}"] = group.scatter(count, n)
        out[f"{entity}_amount_sum_{name}"] = group.scatter(total_in, n)
    return out


def _running_totals(
    group: _Entities, amount: Float64Array, states: Sequence[State | None]
) -> list[float]:
    """Each batch transaction's running amount total, added one by one from its
    entity's last total as ``StateFolder.apply`` adds them (same floating-point sums)."""
    out: list[float] = []
    total = 0.0
    for first, code, a in zip(
        group.first.tolist(),
        group.code.tolist(),
        amount[group.rows].tolist(),
        strict=True,
    ):
        if first:
            state = states[code]
            total = (
                0.0
                if state is None
                else (state["cum"][-1] if state["cum"] else state["cum0"])
            )
        total += a
        out.append(total)
    return out


def first_at_or_after(
    codes: Int64Array,
    times: Int64Array,
    q_codes: Int64Array,
    q_times_list: list[Int64Array],
) -> list[Int64Array] | None:
    """For each query (code, time), the first index i with (codes[i], times[i]) >=
    (code, time), where (codes, times) is sorted by code then time. One searchsorted
    on ``code * span + time`` keys, in as few slices of codes as keep the keys in
    int64. Times before the earliest query are clamped to just before it (only their
    order against the queries matters)."""
    if times.size == 0:
        return [np.zeros(q_codes.size, dtype=np.int64) for _ in q_times_list]
    floor = int(min(q.min() for q in q_times_list)) - 1
    clamped = np.maximum(times, floor) - floor
    top = max(int(clamped.max()), int(max(q.max() for q in q_times_list)) - floor)
    span = top + 1
    if span >= _KEY_LIMIT:
        return None
    per = max(1, _KEY_LIMIT // span)
    results = [np.empty(q_codes.size, dtype=np.int64) for _ in q_times_list]
    top_code = int(codes[-1]) + 1
    for c0 in range(0, top_code, per):
        a, b = np.searchsorted(codes, [c0, c0 + per])
        mask = (q_codes >= c0) & (q_codes < c0 + per)
        keys = (codes[a:b] - c0) * span + clamped[a:b]
        base = (q_codes[mask] - c0) * span
        for q_times, result in zip(q_times_list, results, strict=True):
            q_keys = base + (q_times[mask] - floor)
            result[mask] = a + np.searchsorted(keys, q_keys, side="left")
    return results


# ------------------------------------------------------------------ labels


def _fraud_features(
    plan: OnlinePlan, entity: str, group: _Entities, n: int
) -> dict[str, Float64Array]:
    """Labelled counts and fraud rates: labels come only from the states here (the
    batch carries none), so each transaction reads its entity's state."""
    size = group.rows.size
    windows = plan.fraud[entity]
    labelled = {name: np.zeros(size) for name, _ in windows}
    fraud = {name: np.zeros(size) for name, _ in windows}
    for r, (code, tr) in enumerate(
        zip(group.code.tolist(), group.ts.tolist(), strict=True)
    ):
        state = group.states[code]
        if state is None:
            continue
        for name, width in windows:
            labelled[name][r] = plan.known_in_window(state["lab_ts"], tr, width)
            fraud[name][r] = plan.known_in_window(state["fraud_ts"], tr, width)
    out: dict[str, Float64Array] = {}
    for name, _ in windows:
        rate = fraud_rate(fraud[name], labelled[name])
        out[f"{entity}_fraud_rate_{name}"] = group.scatter(rate, n)
        out[f"{entity}_labelled_count_{name}"] = group.scatter(labelled[name], n)
    return out
