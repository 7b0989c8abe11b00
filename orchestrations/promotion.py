"""Promotion's long part as a Durable orchestration: after the registry switches the
production model, backfill the online feature state it will score with, from the
transactions before the job's ``as_of`` time."""

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
def promotion_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, Any]:
    job = context.get_input()
    context.set_custom_status({"stage": "online backfill"})
    return (yield from run_job_activity(context, "online_backfill", job, _RETRY))


@bp.activity_trigger(input_name="job")
def online_backfill(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container
    from shared.services.online_backfill import run_backfill

    return run_backfill(container(), job["job_id"], job.get("as_of"))
