"""The online feature store: per-entity state of one feature configuration, updated
exactly once per transaction_id, so online features equal the batch ones.

The formulas live in ``ml.features.online``; the state lives behind the
``OnlineStateStore`` port (``shared/adapters/online_state``, one module per database,
chosen when the store is built). This service checks the input, hands it on, and owns
the warm-up thread and the backfill's computation.

A retried transaction id gets the stored features back, changing nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from shared.adapters.online_state import online_state_store, recorded_namespaces
from shared.adapters.online_state.base import COMPACT_MIN_EVENTS
from shared.db.session import Database
from shared.ports import (
    BatchFeatures,
    CommitWith,
    InsertWith,
    OnlineFeatures,
    OnlineStateStore,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml.features.config import FeatureConfig
    from ml.features.online import EntityKey, OnlineFeatureEngine, State

__all__ = [
    "COMPACT_MIN_EVENTS",
    "BatchFeatures",
    "CommitWith",
    "InsertWith",
    "OnlineFeatureStore",
    "OnlineFeatures",
    "feature_set_namespace",
    "namespace_for",
    "recorded_namespaces",
]

log = logging.getLogger(__name__)


def namespace_for(config: Mapping[str, Any], roles: Iterable[str]) -> str:
    """A stable id of a feature configuration: same windows and roles, same state."""
    key = json.dumps({"config": dict(config), "roles": sorted(roles)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _config_and_roles(
    feature_config: Mapping[str, Any],
) -> tuple[FeatureConfig, tuple[str, ...]]:
    from ml.features import ROLES, FeatureConfig

    known = FeatureConfig().to_dict()
    config = FeatureConfig.from_dict(
        {k: v for k, v in feature_config.items() if k in known}
    )
    return config, tuple(feature_config.get("available_roles") or ROLES)


def feature_set_namespace(feature_config: Mapping[str, Any]) -> str:
    """The namespace of the store ``for_feature_config`` builds, without building it."""
    config, roles = _config_and_roles(feature_config)
    return namespace_for(config.to_dict(), roles)


class OnlineFeatureStore:
    """State for one feature configuration (windows, label delay, available columns).

    Keep one store per configuration per process (``for_feature_config`` does not
    cache; the scoring service does): its state cache is what makes a transaction of a
    busy entity cheap.
    """

    def __init__(
        self,
        db: Database,
        engine: OnlineFeatureEngine,
        roles: Iterable[str],
        *,
        cache_entities: int = 100_000,
        compact_min_events: int = COMPACT_MIN_EVENTS,
        state: OnlineStateStore | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.roles = tuple(roles)
        self.namespace = namespace_for(engine.config.to_dict(), self.roles)
        self.state: OnlineStateStore = state or online_state_store(
            db,
            engine,
            self.namespace,
            cache_entities=cache_entities,
            compact_min_events=compact_min_events,
        )
        self._warming = False
        self._warmed = 0
        self._warm_thread: threading.Thread | None = None

    @classmethod
    def for_feature_config(
        cls, db: Database, feature_config: Mapping[str, Any], **options: Any
    ) -> OnlineFeatureStore:
        """The store serving a feature set, from its stored ``feature_config``."""
        from ml.features import OnlineFeatureEngine

        config, roles = _config_and_roles(feature_config)
        return cls(db, OnlineFeatureEngine(config, roles), roles, **options)

    # -- scoring --------------------------------------------------------------------------

    def process(
        self,
        txn: Mapping[str, Any],
        commit_with: CommitWith[OnlineFeatures] | None = None,
    ) -> OnlineFeatures:
        """Features of ``txn`` from the state before it, then fold it in: exactly once
        per transaction_id (a retry returns the first answer and changes nothing).

        ``commit_with(features, conn)`` runs inside the database transaction that
        applies a new transaction id, before it commits (the prediction log writes its
        row there): if it raises, nothing of the transaction is stored. An
        ``InsertWith`` lets PostgreSQL write it in the statement that applies the
        transaction."""
        from ml.features.online import normalize_transaction

        event = normalize_transaction(txn)  # validates before anything is written
        if event["transaction_id"] is None:
            from ml.features import FeatureInputError

            raise FeatureInputError("transaction_id is required", "transaction_id")
        return self.state.apply(event, commit_with)

    def process_many(
        self,
        txns: list[Mapping[str, Any]],
        commit_with: CommitWith[BatchFeatures] | None = None,
    ) -> BatchFeatures:
        """``process`` for many transactions, in the given order, in one database
        transaction; features come back by column. A transaction id seen before (or
        earlier in the same list) is a replay, as in ``process``. Invalid input raises
        FeatureInputError naming the item (``transactions[i].field``) before anything
        is written. ``commit_with``: as in ``process``, with the whole batch (replays
        included, flagged)."""
        from ml.features import FeatureInputError
        from ml.features.online import normalize_transaction

        events: list[dict[str, Any]] = []
        for i, txn in enumerate(txns):
            try:
                event = normalize_transaction(txn)
                if event["transaction_id"] is None:
                    raise FeatureInputError(
                        "transaction_id is required", "transaction_id"
                    )
            except FeatureInputError as exc:
                raise FeatureInputError(
                    f"transactions[{i}]: {exc}", f"transactions[{i}].{exc.field}"
                ) from exc
            events.append(event)
        return self.state.apply_many(events, commit_with)

    def apply_label(self, transaction_id: str, label: Any) -> bool:
        """Store a label that arrived after scoring; used once the label delay passed.
        False when the transaction was never scored here (or its merchant is gone)."""
        from ml.features.online import clean_label

        return self.state.add_label(transaction_id, clean_label(label))

    def states(self, keys: list[EntityKey]) -> dict[EntityKey, State]:
        """The entities' current states, read from the database (not the cache)."""
        return self.state.states(keys)

    def is_live(self) -> bool:
        """True when transactions were scored into this state since its last backfill
        (their exactly-once records are cleared by a backfill)."""
        return self.state.is_live()

    # -- the cache ------------------------------------------------------------------------

    @property
    def cached_entities(self) -> int:
        return self.state.cached_entities

    def cache_stats(self) -> dict[str, Any]:
        """This worker's cache of the namespace, for the health endpoint: a worker
        still warming serves its first transactions of cold entities more slowly."""
        return {
            "namespace": self.namespace,
            "entities": self.state.cached_entities,
            "capacity": self.state.cache_capacity,
            "warming": self._warming,
            "warmed": self._warmed,
        }

    def warm(self, limit: int) -> int:
        """Cache the states of the ``limit`` entities updated most recently (at most
        half the cache), off the request path (``ModelServer`` starts it in a thread):
        a worker that starts, or loads a model, then serves its active entities from
        memory. Returns how many states it cached; ``cache_stats`` tells whether it
        is still running."""
        limit = min(limit, self.state.cache_capacity // 2)
        self._warming = True
        try:
            self._warmed = self.state.warm(limit) if limit > 0 else 0
        finally:
            self._warming = False
        return self._warmed

    def warm_in_background(self, limit: int) -> threading.Thread:
        """``warm`` in a daemon thread; ``cache_stats`` says ``warming`` from now on
        until it ends. A failure is logged: warming is an optimisation, scoring reads
        what it needs."""
        self._warming = limit > 0

        def run() -> None:
            try:
                cached = self.warm(limit)
            except Exception:  # noqa: BLE001 - see the docstring
                self._warming = False
                log.warning("online cache warm-up failed", exc_info=True)
                return
            log.info(
                "online cache: %d entity states loaded for %s", cached, self.namespace
            )

        thread = threading.Thread(target=run, name="online-cache-warm", daemon=True)
        self._warm_thread = thread
        thread.start()
        return thread

    def close(self, timeout: float = 10.0) -> None:
        """Stop a warm-up still running and wait for it: left running, it would keep
        reading the store's tables after its context closed."""
        self.state.stop_warming()
        thread = self._warm_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- bulk -----------------------------------------------------------------------------

    def backfill(
        self,
        df: pd.DataFrame,
        column_mapping: Mapping[str, str] | None = None,
        as_of: Any = None,
    ) -> int:
        """Replace the namespace's state with the history in ``df`` (vectorised), so a
        model put into production scores its first transaction with that history.
        Transactions applied before are forgotten with the state they built."""
        from ml.features import backfill_states

        states = backfill_states(
            df,
            self.engine.config,
            as_of,
            column_mapping=column_mapping,
            available_roles=self.roles,
        )
        return self.state.replace(states)

    def clear(self) -> None:
        self.state.clear()
