"""One place that wires settings, database and blob store for every entry point.

Built lazily on first use, so importing the Functions app stays cheap at cold start.
Tests swap the whole context with ``set_context``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config import Settings, get_settings

if (
    TYPE_CHECKING
):  # SQLAlchemy and the SDKs load when the context is built, not at import
    from shared.db.session import Database
    from shared.storage.base import BlobStore


@dataclass
class AppContext:
    settings: Settings
    db: Database
    blobs: BlobStore

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        from shared.db.session import Database
        from shared.storage.factory import make_blob_store

        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            blobs=make_blob_store(settings),
        )


_lock = threading.Lock()
_context: AppContext | None = None


def get_context() -> AppContext:
    global _context
    if _context is None:
        with _lock:
            if _context is None:
                _context = AppContext.from_settings(get_settings())
    return _context


def set_context(context: AppContext | None) -> None:
    global _context
    with _lock:
        _context = context
