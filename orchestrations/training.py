"""Training's activity, run by the generic single-activity orchestrator
(orchestrations/jobs.py) with one attempt: a failure ends the job FAILED with the reason."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="job")
def training_run(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().training.run(job["job_id"])
