"""Training as a Durable orchestration. Training is expensive and deterministic given its
input, so the activity is not retried: a failure ends the job FAILED with the reason."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import run_job_activity

bp = df.Blueprint()

# Training is expensive and deterministic given its input: one attempt.
_NO_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=1000, max_number_of_attempts=1
)


@bp.orchestration_trigger(context_name="context")
def training_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, Any]:
    job = context.get_input()
    context.set_custom_status({"stage": "training"})
    return (
        yield from run_job_activity(
            context, "training_run", job, _NO_RETRY, "training_fail"
        )
    )


@bp.activity_trigger(input_name="job")
def training_run(job: dict[str, Any]) -> dict[str, Any]:
    from shared.bootstrap import get_context
    from shared.services.training import TrainingService

    return TrainingService(get_context()).run(job["job_id"])


@bp.activity_trigger(input_name="failure")
def training_fail(failure: dict[str, Any]) -> None:
    from shared.bootstrap import get_context
    from shared.services.training import TrainingService

    TrainingService(get_context()).fail(failure["job_id"], failure["reason"])
