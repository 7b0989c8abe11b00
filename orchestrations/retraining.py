"""Retraining as a Durable orchestration of real steps, each an idempotent activity
that passes ids on (shared/services/retraining_steps.py):

assemble the data → compute features with the champion's configuration → train the
challenger (champion's algorithm and hyperparameters, sample weights) → score champion
and challenger on the same holdout → gates → promote (when asked and every gate
passed) → finish (the job COMPLETED with its report).

A step that fails (its retries spent, or a reason no retry can change) ends the job
FAILED naming the step; a cancelled job stops before its next step. The custom status
names the step running.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import failure_reason

bp = df.Blueprint()

ORCHESTRATOR = "retraining_orchestrator"
# (step, attempts): training is long and deterministic given its input, promotion
# is not repeated blindly
STEPS = (("assemble", 2), ("features", 2), ("train", 1), ("evaluate", 2), ("gates", 2))
PROMOTE = ("promote", 1)
FINISH_ACTIVITY = "retraining_finish"
FAIL_ACTIVITY = "retraining_fail"


def activity_name(step: str) -> str:
    return f"retraining_{step}"


def _retry(attempts: int) -> df.RetryOptions:
    return df.RetryOptions(
        first_retry_interval_in_milliseconds=2000, max_number_of_attempts=attempts
    )


def _run_step(
    context: df.DurableOrchestrationContext,
    step: str,
    attempts: int,
    refs: dict[str, Any],
) -> Generator[Any, Any, dict[str, Any]]:
    context.set_custom_status({"stage": step})
    try:
        out: dict[str, Any] = yield context.call_activity_with_retry(
            activity_name(step), _retry(attempts), refs
        )
    except Exception as exc:  # the SDK raises the activity's last failure here
        out = {"status": "FAILED", "error": failure_reason(exc)}
    if out["status"] == "FAILED":
        context.set_custom_status({"stage": "failed", "step": step})
        yield context.call_activity(
            FAIL_ACTIVITY,
            {"job_id": refs["job_id"], "step": step, "reason": out["error"]},
        )
    return out


@bp.orchestration_trigger(context_name="context")
def retraining_orchestrator(
    context: df.DurableOrchestrationContext,
) -> Generator[Any, Any, Any]:
    refs: dict[str, Any] = {"job_id": context.get_input()["job_id"]}
    for step, attempts in STEPS:
        out = yield from _run_step(context, step, attempts, refs)
        if out["status"] != "OK":
            return out
        refs.update({k: v for k, v in out.items() if k != "status"})
    if refs.pop("promote", False):
        out = yield from _run_step(context, *PROMOTE, refs)
        if out["status"] != "OK":
            return out
    context.set_custom_status({"stage": "done"})
    return (
        yield context.call_activity_with_retry(
            FINISH_ACTIVITY, _retry(3), {"job_id": refs["job_id"]}
        )
    )


def _step_activity(step: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def activity(refs: dict[str, Any]) -> dict[str, Any]:
        from shared.container import container

        return container().retraining_workflow.run_step(step, refs)

    activity.__name__ = activity.__qualname__ = activity_name(step)
    return activity


for _step, _ in (*STEPS, PROMOTE):
    bp.activity_trigger(input_name="refs")(_step_activity(_step))


@bp.activity_trigger(input_name="job")
def retraining_finish(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().retraining_workflow.finish(job["job_id"])


@bp.activity_trigger(input_name="failure")
def retraining_fail(failure: dict[str, Any]) -> None:
    from shared.container import container

    container().retraining_workflow.fail(
        failure["job_id"], failure["step"], failure["reason"]
    )
