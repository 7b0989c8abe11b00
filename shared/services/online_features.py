"""The online feature store: per-entity state in the app database, updated exactly once
per transaction_id, read and written in one short transaction per scored transaction.

The formulas live in ``ml.features.online``; this module only moves state between the
database and that engine. SQLAlchemy Core (not the ORM) keeps the per-transaction
overhead to a few statements: read the entity rows (locked on PostgreSQL), compute,
upsert the touched rows, record the transaction id. A retried transaction id finds its
record and gets the stored features back, changing nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, Table, and_, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from shared.db.models import FeatureEntityState, OnlineTransaction
from shared.db.session import Database

if TYPE_CHECKING:
    import pandas as pd

    from ml.features.online import EntityKey, OnlineFeatureEngine, State

_STATE = cast(Table, FeatureEntityState.__table__)
_TXN = cast(Table, OnlineTransaction.__table__)
_BULK_CHUNK = 2000


def namespace_for(config: Mapping[str, Any], roles: Iterable[str]) -> str:
    """A stable id of a feature configuration: same windows and roles, same state."""
    key = json.dumps({"config": dict(config), "roles": sorted(roles)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class OnlineFeatures:
    transaction_id: str
    features: dict[str, float]
    replayed: bool  # True when this transaction id had been applied before


def _event_time(txn: Mapping[str, Any]) -> datetime:
    from ml.features.online import to_epoch_ns

    return datetime.fromtimestamp(to_epoch_ns(txn["timestamp"]) / 1e9, UTC)


class OnlineFeatureStore:
    """State for one feature configuration (windows, label delay, available columns)."""

    def __init__(
        self, db: Database, engine: OnlineFeatureEngine, roles: Iterable[str]
    ) -> None:
        self.db = db
        self.engine = engine
        self.roles = tuple(roles)
        self.namespace = namespace_for(engine.config.to_dict(), self.roles)
        self._postgres = db.dialect == "postgresql"
        # statements built once: SQLAlchemy caches their compiled form by identity
        dialect = postgresql if self._postgres else sqlite
        insert = dialect.insert(_STATE)
        self._upsert_stmt = insert.on_conflict_do_update(
            index_elements=["namespace", "entity_type", "entity_id"],
            set_={
                "state": insert.excluded.state,
                "updated_at": insert.excluded.updated_at,
            },
        )
        self._known_stmt = select(_TXN.c.features).where(
            _TXN.c.namespace == bindparam("ns"),
            _TXN.c.transaction_id == bindparam("tid"),
        )
        self._txn_insert = _TXN.insert()

    @classmethod
    def for_feature_config(
        cls, db: Database, feature_config: Mapping[str, Any]
    ) -> OnlineFeatureStore:
        """The store serving a feature set, from its stored ``feature_config``."""
        from ml.features import ROLES, FeatureConfig, OnlineFeatureEngine

        known = FeatureConfig().to_dict()
        config = FeatureConfig.from_dict(
            {k: v for k, v in feature_config.items() if k in known}
        )
        roles = tuple(feature_config.get("available_roles") or ROLES)
        return cls(db, OnlineFeatureEngine(config, roles), roles)

    # -- state rows ---------------------------------------------------------------------

    def _key_filter(self, keys: list[EntityKey]) -> Any:
        # IN lists on the primary key columns (an OR of ANDs made SQLite scan the
        # table); the few extra (type, id) combinations are dropped after reading.
        return and_(
            _STATE.c.namespace == self.namespace,
            _STATE.c.entity_type.in_(sorted({t for t, _ in keys})),
            _STATE.c.entity_id.in_(sorted({i for _, i in keys})),
        )

    def _load(
        self, conn: Connection, keys: list[EntityKey], lock: bool
    ) -> dict[EntityKey, State]:
        from ml.features.online import state_from_json

        if not keys:
            return {}
        query = select(_STATE.c.entity_type, _STATE.c.entity_id, _STATE.c.state).where(
            self._key_filter(keys)
        )
        if lock and self._postgres:
            query = query.with_for_update()
        wanted = set(keys)
        return {
            (row.entity_type, row.entity_id): state_from_json(row.state)
            for row in conn.execute(query)
            if (row.entity_type, row.entity_id) in wanted and row.state
        }

    def _load_locked(
        self, conn: Connection, keys: list[EntityKey]
    ) -> dict[EntityKey, State]:
        """Read and lock the entities' states. On PostgreSQL, FOR UPDATE cannot lock a row
        that does not exist yet, so two first transactions of a new entity could both
        start from nothing and one update would be lost: an empty placeholder row is
        inserted first (a concurrent insert waits on it), then everything is locked."""
        states = self._load(conn, keys, lock=True)
        missing = [k for k in keys if k not in states]
        if self._postgres and missing:
            placeholder = postgresql.insert(_STATE).on_conflict_do_nothing()
            now = datetime.now(UTC)
            conn.execute(
                placeholder,
                [
                    {
                        "namespace": self.namespace,
                        "entity_type": t,
                        "entity_id": i,
                        "state": b"",
                        "updated_at": now,
                    }
                    for t, i in missing
                ],
            )
            states = self._load(conn, keys, lock=True)
        return states

    def _upsert(self, conn: Connection, states: Mapping[EntityKey, State]) -> None:
        from ml.features.online import state_to_json

        if not states:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "namespace": self.namespace,
                "entity_type": t,
                "entity_id": i,
                "state": state_to_json(state),
                "updated_at": now,
            }
            for (t, i), state in states.items()
        ]
        conn.execute(self._upsert_stmt, rows)

    def states(self, keys: list[EntityKey]) -> dict[EntityKey, State]:
        with self.db.engine.connect() as conn:
            return self._load(conn, keys, lock=False)

    # -- scoring path -----------------------------------------------------------------

    def _replay(self, transaction_id: str) -> OnlineFeatures | None:
        with self.db.engine.connect() as conn:
            stored = conn.execute(
                select(_TXN.c.features).where(
                    _TXN.c.namespace == self.namespace,
                    _TXN.c.transaction_id == transaction_id,
                )
            ).scalar()
        return None if stored is None else OnlineFeatures(transaction_id, stored, True)

    def process(self, txn: Mapping[str, Any]) -> OnlineFeatures:
        """Features of ``txn`` from the state before it, then fold it in: exactly once
        per transaction_id (a retry returns the first answer and changes nothing)."""
        transaction_id = str(txn["transaction_id"])
        keys = self.engine.entity_keys(txn)
        try:
            # SQLite: BEGIN IMMEDIATE takes the write lock before the read, so two
            # writers of one entity never both read the old state (PostgreSQL: FOR UPDATE).
            with (
                self.db.engine.connect().execution_options(
                    sqlite_begin="immediate"
                ) as conn,
                conn.begin(),
            ):
                known = conn.execute(
                    self._known_stmt, {"ns": self.namespace, "tid": transaction_id}
                ).scalar()
                if known is not None:
                    return OnlineFeatures(transaction_id, known, True)
                states = self._load_locked(conn, keys)
                features, touched = self.engine.process(txn, states)
                self._upsert(conn, touched)
                conn.execute(
                    self._txn_insert,
                    {
                        "namespace": self.namespace,
                        "transaction_id": transaction_id,
                        "event_time": _event_time(txn),
                        "entity_keys": [list(k) for k in keys],
                        "features": features,
                        "created_at": datetime.now(UTC),
                    },
                )
        except IntegrityError:
            # the same transaction id, applied concurrently by another request
            replay = self._replay(transaction_id)
            if replay is None:
                raise
            return replay
        return OnlineFeatures(transaction_id, features, False)

    def apply_label(self, transaction_id: str, label: Any) -> bool:
        """Store a label that arrived after scoring; used once the label delay passed."""
        with (
            self.db.engine.connect().execution_options(
                sqlite_begin="immediate"
            ) as conn,
            conn.begin(),
        ):
            keys = conn.execute(
                select(_TXN.c.entity_keys).where(
                    _TXN.c.namespace == self.namespace,
                    _TXN.c.transaction_id == transaction_id,
                )
            ).scalar()
            merchant = [
                (str(k[0]), str(k[1])) for k in (keys or []) if k[0] == "merchant"
            ]
            if not merchant:
                return False
            states = self._load(conn, merchant, lock=True)
            for state in states.values():
                self.engine.apply_label(state, transaction_id, label)
            self._upsert(conn, states)
        return bool(states)

    # -- bulk ---------------------------------------------------------------------------

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
        with self.db.engine.begin() as conn:
            self._clear(conn)
            items = list(states.items())
            for start in range(0, len(items), _BULK_CHUNK):
                self._upsert(conn, dict(items[start : start + _BULK_CHUNK]))
        return len(states)

    def _clear(self, conn: Connection) -> None:
        conn.execute(_STATE.delete().where(_STATE.c.namespace == self.namespace))
        conn.execute(_TXN.delete().where(_TXN.c.namespace == self.namespace))

    def clear(self) -> None:
        with self.db.engine.begin() as conn:
            self._clear(conn)
