"""Feature computation's activity: reads the dataset blob and writes the feature-set blob,
idempotent, run by the generic single-activity orchestrator (orchestrations/jobs.py)
with retries on transient failure."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="job")
def features_compute(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().features.run_job(job["job_id"])
