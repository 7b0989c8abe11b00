"""Feature computation as a Durable orchestration: one idempotent activity that reads the
dataset blob and writes the feature-set blob, retried on transient failure; when retries
run out the job ends FAILED with the reason."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import run_job_activity

bp = df.Blueprint()

_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3
)


@bp.orchestration_trigger(context_name="context")
def features_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, Any]:
    job = context.get_input()
    context.set_custom_status({"stage": "computing"})
    return (yield from run_job_activity(context, "features_compute", job, _RETRY))


@bp.activity_trigger(input_name="job")
def features_compute(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().features.run_job(job["job_id"])
