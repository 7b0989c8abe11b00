"""Online features: one transaction at a time from stored per-entity state.

The public entry of the online engine. `OnlineFeatureEngine.compute` scores a
transaction from the states *before* it; `update` folds it in. Both follow the batch
rules exactly: only strictly earlier timestamps are visible (ties never see each
other) and a label of an event at s counts only once s + label_delay <= t. Labels may
arrive later through `apply_label`; they are stored with their event and used only
after the delay, so a label arriving early never leaks. This module does not import
pandas; only `backfill_states` reads a DataFrame.

The parts, each importing only those before it:
  online_event     a transaction parsed and checked (`Txn`, `normalize_transaction`)
  online_state     the state layout, its JSON form, folding a transaction in
  online_compute   which features a configuration serves; one transaction's features
  online_batch     a whole batch's features as one matrix
  online_backfill  states from a DataFrame of history
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ml.features.config import FeatureConfig, Float64Array
from ml.features.online_backfill import backfill_states
from ml.features.online_batch import batch_features
from ml.features.online_compute import OnlinePlan, features_one
from ml.features.online_event import (
    Txn,
    clean_label,
    normalize_transaction,
    to_epoch_ns,
)
from ml.features.online_state import (
    ENTITY_TYPES,
    STATE_VERSION,
    EntityKey,
    State,
    StateFolder,
    apply_label,
    copy_state,
    entity_key,
    new_state,
    state_from_json,
    state_to_json,
)

__all__ = [
    "ENTITY_TYPES",
    "STATE_VERSION",
    "EntityKey",
    "OnlineFeatureEngine",
    "State",
    "Txn",
    "backfill_states",
    "clean_label",
    "copy_state",
    "entity_key",
    "new_state",
    "normalize_transaction",
    "state_from_json",
    "state_to_json",
    "to_epoch_ns",
]


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
        self.plan = plan = OnlinePlan(config, available_roles)
        self.config = plan.config
        self.specs, self.dropped = plan.specs, plan.dropped
        self.feature_names = plan.feature_names
        self.seen_roles = plan.seen_roles
        self.entity_types = plan.entity_types
        self.retention_ns = plan.retention_ns
        # the entity types whose states take a late label (`apply_label`)
        self.labelled_entities = plan.labelled
        self._fold = StateFolder(plan.retention_ns, plan.seen_roles, plan.labelled)

    def entity_keys(self, txn: Mapping[str, Any]) -> list[EntityKey]:
        """State keys this transaction reads and writes (entities it has)."""
        return self.plan.entity_keys(txn)

    def compute(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> dict[str, float]:
        """Features of `txn` from the states before it (missing state = no history)."""
        return features_one(self.plan, Txn(txn), states)

    def update(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> dict[EntityKey, State]:
        """Apply `txn` to its entities' states, in place; returns every touched state
        (new ones for entities seen for the first time). Use `copy_state` first to
        keep an old version.

        A label on the transaction (`is_fraud`) is stored with it, to be used only
        after the label delay, exactly like one applied later with `apply_label`.
        """
        return self._update(Txn(txn), states)

    def _update(
        self, p: Txn, states: Mapping[EntityKey, State | None]
    ) -> dict[EntityKey, State]:
        out: dict[EntityKey, State] = {}
        for key in self.plan.keys(p):
            state = states.get(key)
            if state is None:
                state = self._fold.new(key[0])
            self._fold.apply(key[0], state, p)
            out[key] = state
        return out

    def update_entity(
        self, key: EntityKey, txn: Mapping[str, Any], state: State | None
    ) -> State:
        """Apply `txn` to one entity's state (in place; a new state if None)."""
        if state is None:
            state = self._fold.new(key[0])
        self._fold.apply(key[0], state, Txn(txn))
        return state

    def process(
        self, txn: Mapping[str, Any], states: Mapping[EntityKey, State | None]
    ) -> tuple[dict[str, float], dict[EntityKey, State]]:
        """compute then update: the scoring path's one call (parses `txn` once)."""
        p = Txn(txn)
        return features_one(self.plan, p, states), self._update(p, states)

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
        transaction: the caller scores and stores rows."""
        parse = Txn.normalized if normalized else Txn
        parsed = [parse(txn) for txn in txns]
        matrix = batch_features(self.plan, parsed, states) if parsed else None
        if matrix is None:
            names = self.feature_names
            out = np.zeros((len(parsed), len(names)), dtype=np.float64)
            for i, p in enumerate(parsed):
                features = features_one(self.plan, p, states)
                out[i] = [features[name] for name in names]
                states.update(self._update(p, states))
            return out
        runs: dict[EntityKey, list[Txn]] = {}
        for p in parsed:
            for key in self.plan.keys(p):
                runs.setdefault(key, []).append(p)
        for key, run in runs.items():
            state = states.get(key)
            if state is None:
                state = states[key] = self._fold.new(key[0])
            self._fold.apply_run(key[0], state, run)
        return matrix

    def apply_label(self, state: State, transaction_id: str, label: Any) -> State:
        """Record a (late) label on a state of one of `labelled_entities`, in place;
        returns the state.

        Unknown or already pruned transactions leave the state unchanged.
        """
        return apply_label(state, transaction_id, label)
