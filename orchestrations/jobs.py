"""What every job orchestration shares: the Service Bus starter that turns a queued job
into a Durable instance on Azure, the one generic orchestrator of single-activity jobs
(run the job's activity, fail the job with the reason), and the activity that ends a
job FAILED."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from shared.adapters.launcher import JOBS_QUEUE

log = logging.getLogger(__name__)

bp = df.Blueprint()

FAIL_ACTIVITY = "job_fail"


@dataclass(frozen=True)
class SingleActivityJob:
    """A kind of job that is one idempotent activity: the orchestrator name its service
    launches, the activity, the stage shown as custom status, and how many attempts."""

    orchestrator: str
    activity: str
    stage: str
    attempts: int
    first_retry_ms: int = 2000


# Training is expensive and deterministic given its input: one attempt.
SINGLE_ACTIVITY_JOBS = (
    SingleActivityJob("features_orchestrator", "features_compute", "computing", 3),
    SingleActivityJob("training_orchestrator", "training_run", "training", 1, 1000),
    SingleActivityJob("backtest_orchestrator", "backtest_score", "scoring", 2),
)


@bp.service_bus_queue_trigger(
    arg_name="msg", queue_name=JOBS_QUEUE, connection="ServiceBusConnection"
)
@bp.durable_client_input(client_name="client")
async def jobs_starter(
    msg: func.ServiceBusMessage, client: df.DurableOrchestrationClient
) -> None:
    """Start (or terminate) the orchestration named in the message. Delivery is
    at-least-once, so a start for an instance that already exists does nothing."""
    body: dict[str, Any] = json.loads(msg.get_body())
    instance_id = body["instance_id"]
    if body.get("action") == "terminate":
        status = await client.get_status(instance_id)
        if status and status.runtime_status in (
            df.OrchestrationRuntimeStatus.Running,
            df.OrchestrationRuntimeStatus.Pending,
        ):
            await client.terminate(instance_id, body.get("reason", "cancelled"))
        return
    status = await client.get_status(instance_id)
    if status is not None and status.runtime_status is not None:
        log.info(
            "orchestration %s exists already; duplicate message ignored", instance_id
        )
        return
    await client.start_new(body["orchestrator"], instance_id, body.get("input"))


@bp.activity_trigger(input_name="failure")
def job_fail(failure: dict[str, Any]) -> None:
    """Record why a job failed once its orchestration has given up."""
    # the service layer loads SQLAlchemy: not when the host indexes the app
    from shared.container import container

    container().jobs.fail(failure["job_id"], failure["reason"])


def failure_reason(exc: BaseException) -> str:
    """The activity's own message, without the SDK's wrapping and traceback."""
    text = str(exc)
    for marker in ("failed: ", "Activity function"):
        if marker in text:
            text = text.split(marker, 1)[-1]
    return text.split("\n", 1)[0].strip() or type(exc).__name__


def run_job_activity(
    context: df.DurableOrchestrationContext,
    activity: str,
    job: dict[str, Any],
    retry: df.RetryOptions,
) -> Generator[Any, Any, Any]:
    """Call the job's idempotent activity with retries; when they run out, record the
    reason on the job. Use with ``yield from``."""
    try:
        result = yield context.call_activity_with_retry(activity, retry, job)
    except Exception as exc:  # the SDK raises the activity's final failure here
        reason = failure_reason(exc)
        yield context.call_activity(
            FAIL_ACTIVITY, {"job_id": job["job_id"], "reason": reason}
        )
        return {"status": "FAILED", "error": reason}
    return result


def single_activity_orchestrator(
    spec: SingleActivityJob,
) -> Callable[[df.DurableOrchestrationContext], Generator[Any, Any, Any]]:
    """The generic orchestrator, named after the kind's orchestrator."""
    retry = df.RetryOptions(
        first_retry_interval_in_milliseconds=spec.first_retry_ms,
        max_number_of_attempts=spec.attempts,
    )

    def orchestrator(
        context: df.DurableOrchestrationContext,
    ) -> Generator[Any, Any, Any]:
        job = context.get_input()
        context.set_custom_status({"stage": spec.stage})
        return (yield from run_job_activity(context, spec.activity, job, retry))

    orchestrator.__name__ = orchestrator.__qualname__ = spec.orchestrator
    return orchestrator


for _spec in SINGLE_ACTIVITY_JOBS:
    bp.orchestration_trigger(context_name="context")(
        single_activity_orchestrator(_spec)
    )
