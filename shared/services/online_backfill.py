"""Fill the online feature store for a model going into production, so its first scored
transaction already has the full history of its training data behind it.

Unless that state is live: a model with the same feature configuration as the one it
replaces shares its online state, and once transactions have been scored into it,
rebuilding it from the training data would forget them (velocity counts, the user's
devices, labels that came back). Then the backfill keeps it and says so, unless the
promotion asked to replace it (``online_state: "replace"``)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file
from shared.db.types import utcnow
from shared.gc_freezer import collector_paused
from shared.services.jobs import JobCancelled
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.container import Container
    from shared.db.models import MLModel

log = logging.getLogger(__name__)

JOB_KIND = "online_backfill"
ORCHESTRATOR = "promotion_orchestrator"


def start_backfill(
    ctx: Container,
    model: MLModel,
    *,
    replace_live: bool = False,
    as_of: datetime | None = None,
) -> str | None:
    """Queue the backfill for a model's feature configuration, from the transactions
    before ``as_of`` (default: now); None without a feature set."""
    if model.feature_set_id is None:
        return None
    job_id = uuid.uuid4()
    cutoff = iso(as_of or utcnow())
    payload = {
        "job_id": str(job_id),
        "model_id": str(model.id),
        "feature_set_id": str(model.feature_set_id),
        "replace_live": replace_live,
        "as_of": cutoff,
    }
    ctx.jobs.create(JOB_KIND, payload, job_id)
    ctx.launcher.launch(
        ORCHESTRATOR, str(job_id), {"job_id": str(job_id), "as_of": cutoff}
    )
    return str(job_id)


def run_backfill(
    ctx: Container, job_id: str, as_of: str | None = None
) -> dict[str, Any]:
    """The activity: idempotent, since a backfill replaces the namespace's state whole.
    Transactions at or after ``as_of`` (else the job's, else now) never enter it."""
    import pyarrow.parquet as pq

    from shared.services.online_features import OnlineFeatureStore

    jobs = ctx.jobs
    try:
        payload = jobs.start(job_id, "loading the training data")
    except JobCancelled:
        return {"status": "CANCELLED"}
    with ctx.uow() as tx:
        fs = tx.feature_sets.get(uuid.UUID(payload["feature_set_id"]))
        version = None
        if fs is not None and fs.dataset_id is not None and fs.dataset_version:
            version = tx.datasets.version(fs.dataset_id, fs.dataset_version)
    if fs is None or version is None:
        reason = "the model's feature set or its dataset no longer exists"
        jobs.fail(job_id, reason)
        return {"status": "FAILED", "error": reason}
    cutoff = as_of or payload.get("as_of") or iso(utcnow())
    config = fs.feature_config or {}
    store = OnlineFeatureStore.for_feature_config(ctx.db, config)
    if not payload.get("replace_live") and store.is_live():
        kept = {
            "kept_live_state": True,
            "namespace": store.namespace,
            "reason": "transactions were scored into this feature configuration's "
            "online state since its last backfill; promote with online_state "
            '"replace" to rebuild it from the training data',
        }
        jobs.complete(job_id, kept)
        log.info("online state kept for model %s: %s", payload["model_id"], kept)
        return {"status": "COMPLETED", **kept}
    with local_file(ctx.blobs, version.storage_path) as path:
        df = pq.read_table(path).to_pandas()
    jobs.progress(
        job_id, 0.3, f"backfilling online state from {len(df):,} transactions"
    )
    with collector_paused(ctx.settings.backfill_gc_pause):
        entities = store.backfill(
            df, column_mapping=config.get("column_mapping") or None, as_of=cutoff
        )
    result = {
        "kept_live_state": False,
        "entities": entities,
        "namespace": store.namespace,
        "rows": len(df),
        "as_of": cutoff,
    }
    jobs.complete(job_id, result)
    log.info("online state backfilled for model %s: %s", payload["model_id"], result)
    return {"status": "COMPLETED", **result}
