"""Training as a Durable orchestration. Training is expensive and deterministic given its
input, so the activity is not retried: a failure ends the job FAILED with the reason."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import failure_reason

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def training_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, Any]:
    job = context.get_input()
    context.set_custom_status({"stage": "training"})
    try:
        result = yield context.call_activity("training_run", job)
    except Exception as exc:  # the activity raised: record why on the job
        reason = failure_reason(exc)
        yield context.call_activity(
            "training_fail", {"job_id": job["job_id"], "reason": reason}
        )
        return {"status": "FAILED", "error": reason}
    return result


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
