"""The ``OnlineStateStore`` adapters: one module per database, chosen once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.adapters.online_state.base import SqlOnlineState
from shared.adapters.online_state.schema import recorded_namespaces

if TYPE_CHECKING:
    from ml.features.online import OnlineFeatureEngine
    from shared.db.session import Database

__all__ = ["SqlOnlineState", "online_state_store", "recorded_namespaces"]


def online_state_store(
    db: Database, engine: OnlineFeatureEngine, namespace: str, **options: Any
) -> SqlOnlineState:
    """The adapter of ``db``'s backend, for the state of one namespace."""
    if db.dialect == "postgresql":
        from shared.adapters.online_state.postgresql import PostgresOnlineState

        return PostgresOnlineState(db, engine, namespace, **options)
    from shared.adapters.online_state.sqlite import SqliteOnlineState

    return SqliteOnlineState(db, engine, namespace, **options)
