"""Reachability of the database, a write-read-delete round trip through the blob
store, and the state of this worker's prediction log and online caches, for the health
endpoint."""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.config import Settings
from shared.ports import BlobStore, StorageError

if TYPE_CHECKING:
    from shared.db.session import Database
    from shared.services.predictions import Predictor


def _probe(fn: Any, failed: str = "unreachable") -> dict[str, Any]:
    start = time.perf_counter()
    try:
        fn()
        status, error = "ok", None
    except Exception as exc:  # report, don't raise: health must always answer
        status, error = failed, f"{type(exc).__name__}: {exc}"[:500]
    out: dict[str, Any] = {
        "status": status,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
    }
    if error:
        out["error"] = error
    return out


def _round_trip(blobs: BlobStore) -> None:
    """Write, read back and delete a small blob of its own: a store that answers but
    cannot be written (read-only or full folder, a missing write role) fails here."""
    name = f".health-probe-{uuid.uuid4().hex}"
    blobs.put_bytes(name, name.encode())
    try:
        if blobs.get_bytes(name) != name.encode():
            raise StorageError("the probe blob read back differs from what was written")
    finally:
        blobs.delete_prefix(name)


def _storage(blobs: BlobStore) -> dict[str, Any]:
    """``unreachable`` when the store does not answer, ``failing`` when it answers
    but the round trip fails."""
    reached = _probe(blobs.ping)
    if reached["status"] != "ok":
        return reached
    used = _probe(lambda: _round_trip(blobs), failed="failing")
    used["latency_ms"] = round(used["latency_ms"] + reached["latency_ms"], 2)
    return used


class HealthService:
    """``started`` gives this worker's scoring service if a request has built it."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        settings: Settings,
        started: Callable[[], Predictor | None],
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.settings = settings
        self.started = started

    def check(self) -> dict[str, Any]:
        database = _probe(self.db.ping) | {"backend": self.db.dialect}
        storage = _storage(self.blobs) | {
            "backend": self.settings.resolved_storage_backend
        }
        healthy = database["status"] == "ok" and storage["status"] == "ok"
        worker: dict[str, Any] = {"pid": os.getpid()}
        predictor = self.started()
        if predictor is not None:  # this worker's prediction log and online caches
            worker["prediction_log"] = dataclasses.asdict(predictor.log.stats())
            worker["online_cache"] = predictor.models.cache_stats()
        return {
            "status": "ok" if healthy else "degraded",
            "runtime": self.settings.backend,
            "database": database,
            "storage": storage,
            "worker": worker,
        }
