"""Reachability of the database and the blob store, and the state of this worker's
prediction log and online caches, for the health endpoint."""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from shared.bootstrap import AppContext


def _probe(fn: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        fn()
        status, error = "ok", None
    except Exception as exc:  # report, don't raise: health must always answer
        status, error = "unreachable", f"{type(exc).__name__}: {exc}"[:500]
    out: dict[str, Any] = {
        "status": status,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
    }
    if error:
        out["error"] = error
    return out


def check_health(ctx: AppContext) -> dict[str, Any]:
    database = _probe(ctx.db.ping) | {"backend": ctx.db.dialect}
    storage = _probe(ctx.blobs.ping) | {
        "backend": ctx.settings.resolved_storage_backend
    }
    healthy = database["status"] == "ok" and storage["status"] == "ok"
    worker: dict[str, Any] = {"pid": os.getpid()}
    predictor = ctx.started_predictor
    if predictor is not None:  # queued, written and spilled predictions of this worker
        worker["prediction_log"] = dataclasses.asdict(predictor.log.stats())
        worker["online_cache"] = predictor.models.cache_stats()
    return {
        "status": "ok" if healthy else "degraded",
        "runtime": ctx.settings.backend,
        "database": database,
        "storage": storage,
        "worker": worker,
    }
