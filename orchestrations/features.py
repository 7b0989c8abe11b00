"""Feature computation as a Durable orchestration: one idempotent activity that reads the
dataset blob and writes the feature-set blob, retried on transient failure; when retries
run out the job ends FAILED with the reason."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import failure_reason

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
    try:
        result = yield context.call_activity_with_retry("features_compute", _RETRY, job)
    except Exception as exc:  # the SDK raises the activity's final failure here
        reason = failure_reason(exc)
        yield context.call_activity(
            "job_fail", {"job_id": job["job_id"], "reason": reason}
        )
        return {"status": "FAILED", "error": reason}
    return result


@bp.activity_trigger(input_name="job")
def features_compute(job: dict[str, Any]) -> dict[str, Any]:
    from shared.bootstrap import get_context
    from shared.services.features import FeatureService

    return FeatureService(get_context()).run_job(job["job_id"])
