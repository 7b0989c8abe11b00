"""The online state's rows as the driver takes them, for one namespace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from shared.adapters.online_state.schema import STATE, TXN, Head, event_time
from shared.db.driver import DriverSQL
from shared.ports import BatchFeatures

if TYPE_CHECKING:
    from ml.features.config import Float64Array
    from ml.features.online import EntityKey


class Rows:
    """Positional rows (``schema``'s column orders) of one namespace, values bound."""

    def __init__(
        self, namespace: str, sql: DriverSQL, feature_names: Sequence[str]
    ) -> None:
        self.namespace = namespace
        self.sql = sql
        self.feature_names = list(feature_names)

    def bound_now(self) -> Any:
        """Now, as a head row's ``updated_at`` goes to the driver."""
        return self.sql.bind(STATE, "updated_at")(datetime.now(UTC))

    def now(self) -> Any:
        """The records' ``created_at``, bound for the driver."""
        return self.sql.bind(TXN, "created_at")(datetime.now(UTC))

    def head_values(
        self, key: EntityKey, seq: int, now: Any, gen: int
    ) -> tuple[Any, ...]:
        """A head row, positional (``STATE_COLUMNS``): its snapshot at sequence 0,
        ``now`` as ``bound_now`` gives it, ``gen`` a fresh generation."""
        return (self.namespace, key[0], key[1], now, seq, 0, gen)

    def snapshot_row(
        self, key: EntityKey, gen: int, snapshot_seq: int, state: bytes
    ) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "entity_type": key[0],
            "entity_id": key[1],
            "gen": gen,
            "snapshot_seq": snapshot_seq,
            "state": state,
        }

    def event_row(self, key: EntityKey, seq: int, payload: bytes) -> tuple[Any, ...]:
        """An event row, positional (``EVENT_COLUMNS``)."""
        return (self.namespace, key[0], key[1], seq, payload)

    def event_rows(
        self, heads: Mapping[EntityKey, Head], payload: bytes
    ) -> list[tuple[Any, ...]]:
        return [self.event_row(key, head.seq, payload) for key, head in heads.items()]

    def record(
        self,
        event: Mapping[str, Any],
        keys: list[EntityKey],
        values: list[float],
        now: Any,
        bound_time: Any = None,
    ) -> tuple[Any, ...]:
        """The exactly-once record of an applied transaction (its features are what a
        retry gets back), positional (``TXN_COLUMNS``); ``now`` bound already.
        ``values``: the features in ``engine.feature_names`` order, stored so: a third
        of the bytes of names and values. ``bound_time``: the event time bound already
        (the adapter's ``_bound_event_times``), else bound here."""
        sql = self.sql
        return (
            self.namespace,
            str(event["transaction_id"]),
            sql.bind(TXN, "event_time")(event_time(event))
            if bound_time is None
            else bound_time,
            sql.bind(TXN, "entity_keys")([list(k) for k in keys]),
            sql.bind(TXN, "features")(values),
            now,
        )

    def values_of(self, stored: Any) -> list[float]:
        """A record's features as values in ``engine.feature_names`` order, from a
        stored record (either form ``features_of`` reads) or a dict by name."""
        if isinstance(stored, list):
            return cast(list[float], stored)
        return [stored[name] for name in self.feature_names]

    def features_of(self, stored: Any) -> dict[str, float]:
        """A record's features by name: stored as values in ``engine.feature_names``
        order (the namespace fixes the names), or by name as before that."""
        if isinstance(stored, list):
            return dict(zip(self.feature_names, stored, strict=True))
        return cast(dict[str, float], stored)

    def batch_features(
        self,
        tids: list[str],
        rows: list[list[float]],
        replayed: list[bool],
        values: Float64Array | None = None,
    ) -> BatchFeatures:
        """``rows`` by column (``values``, when the caller has them already)."""
        import numpy as np

        names = tuple(self.feature_names)
        if values is None:
            values = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
        return BatchFeatures(tids, names, values, rows, replayed)
