"""A Durable blueprint for the local engine's tests, declared as on Azure.

``probe`` lets tests see what activities did (call counts, start signals) and
hold an activity open (gates) without mocking the SDK.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from local.durable.cancellation import is_cancel_requested, raise_if_cancelled
from orchestrations.jobs import (
    FAIL_ACTIVITY,
    SingleActivityJob,
    single_activity_orchestrator,
)

bp = df.Blueprint()

Orchestration = Generator[Any, Any, Any]


class Probe:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Fresh state per test (gates of the previous test are released first)."""
        if hasattr(self, "gates"):
            self.release_all()
        self.calls: Counter[str] = Counter()
        self.started: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.gates: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.observed_cancel = threading.Event()
        self.failed_jobs: list[dict[str, Any]] = []

    def count(self, key: str) -> int:
        with self.lock:
            self.calls[key] += 1
            return self.calls[key]

    def release_all(self) -> None:
        for gate in list(self.gates.values()):
            gate.set()


probe = Probe()


# --- orchestrators ----------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def sequential(context: df.DurableOrchestrationContext) -> Orchestration:
    greeting = yield context.call_activity("greet", context.get_input())
    return (yield context.call_activity("shout", greeting))


@bp.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Orchestration:
    items = context.get_input()
    squares = yield context.task_all(
        [context.call_activity("square", i) for i in items]
    )
    return {"squares": squares, "total": sum(squares)}


@bp.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext) -> Orchestration:
    spec = context.get_input()
    options = df.RetryOptions(10, spec["max_attempts"])
    return (yield context.call_activity_with_retry("flaky", options, spec))


@bp.orchestration_trigger(context_name="context")
def mixed_retries(context: df.DurableOrchestrationContext) -> Orchestration:
    """Retries interleaved with plain calls: exercises the SDK's task numbering."""
    options = df.RetryOptions(5, 3)
    first = yield context.task_all(
        [
            context.call_activity_with_retry(
                "flaky", options, {"key": "mix-a", "failures": 1}
            ),
            context.call_activity("square", 3),
            context.call_activity_with_retry(
                "flaky", options, {"key": "mix-b", "failures": 2}
            ),
        ]
    )
    after = yield context.call_activity("square", 4)
    return [first, after]


@bp.orchestration_trigger(context_name="context")
def custom_status(context: df.DurableOrchestrationContext) -> Orchestration:
    context.set_custom_status({"stage": "waiting"})
    yield context.call_activity("gated", "status")
    context.set_custom_status({"stage": "done"})
    return "ok"


@bp.orchestration_trigger(context_name="context")
def cancellable(context: df.DurableOrchestrationContext) -> Orchestration:
    yield context.call_activity("wait_for_cancel", context.get_input())
    return "not terminated"


@bp.orchestration_trigger(context_name="context")
def pipeline(context: df.DurableOrchestrationContext) -> Orchestration:
    first = yield context.call_activity("count", "first")
    second = yield context.call_activity("gated", "restart")
    third = yield context.call_activity("count", "third")
    return [first, second, third]


@bp.orchestration_trigger(context_name="context")
def clock(context: df.DurableOrchestrationContext) -> Orchestration:
    t0 = context.current_utc_datetime.isoformat()
    echoed = yield context.call_activity("echo_later", t0)
    t1 = context.current_utc_datetime.isoformat()
    yield context.call_activity("echo_later", t1)
    return {"t0": t0, "echoed": echoed, "t1": t1, "replaying": context.is_replaying}


@bp.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext) -> Orchestration:
    fire_at = context.current_utc_datetime + timedelta(milliseconds=50)
    yield context.create_timer(fire_at)
    return fire_at.isoformat()


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Orchestration:
    decision = yield context.wait_for_external_event("approval")
    return {"decision": decision}


@bp.orchestration_trigger(context_name="context")
def catches_failure(context: df.DurableOrchestrationContext) -> Orchestration:
    try:
        yield context.call_activity("flaky", {"key": "always", "failures": 99})
    except Exception as exc:
        return {"caught": str(exc).splitlines()[0]}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def uses_sub_orchestrator(context: df.DurableOrchestrationContext) -> Orchestration:
    return (yield context.call_sub_orchestrator("sequential", "x"))


# --- activities -------------------------------------------------------------


@bp.activity_trigger(input_name="name")
def greet(name: str) -> str:
    probe.count("greet")
    return f"hello {name}"


@bp.activity_trigger(input_name="text")
def shout(text: str) -> str:
    return text.upper() + "!"


@bp.activity_trigger(input_name="value")
def square(value: int) -> int:
    time.sleep(0.002 * (10 - value % 10))  # later items finish first
    return value * value


@bp.activity_trigger(input_name="spec")
def flaky(spec: dict[str, Any]) -> dict[str, int]:
    attempt = probe.count(spec["key"])
    if attempt <= spec["failures"]:
        raise RuntimeError(f"{spec['key']} failed on attempt {attempt}")
    return {"attempts": attempt}


@bp.activity_trigger(input_name="key")
def gated(key: str) -> str:
    probe.count(key)
    probe.started[key].set()
    probe.gates[key].wait(10)
    return key


@bp.activity_trigger(input_name="key")
def count(key: str) -> str:
    probe.count(key)
    return key


@bp.activity_trigger(input_name="key")
def wait_for_cancel(key: str) -> str:
    probe.started[key].set()
    deadline = time.monotonic() + 10
    while not is_cancel_requested() and time.monotonic() < deadline:
        time.sleep(0.01)
    if is_cancel_requested():
        probe.observed_cancel.set()
    raise_if_cancelled()
    return "timed out"


@bp.activity_trigger(input_name="value")
def echo_later(value: str) -> str:
    time.sleep(0.01)  # so the next episode starts at a later time
    return value


@bp.orchestration_trigger(context_name="context")
def race_with_retry(context: df.DurableOrchestrationContext) -> Orchestration:
    """A plain call racing a retried one; the winner resumes the code early."""
    winner = yield context.task_any(
        [
            context.call_activity("count", "b"),
            context.call_activity_with_retry(
                "flaky", df.RetryOptions(5, 2), {"key": "race-a", "failures": 1}
            ),
        ]
    )
    after = yield context.call_activity("count", "c")
    return [winner.result, after]


# the generic orchestrator of single-activity jobs, as orchestrations/jobs.py builds it
SAMPLE_JOB = SingleActivityJob("sample_job_orchestrator", "flaky_job", "working", 2, 10)
bp.orchestration_trigger(context_name="context")(
    single_activity_orchestrator(SAMPLE_JOB)
)


@bp.activity_trigger(input_name="job")
def flaky_job(job: dict[str, Any]) -> dict[str, Any]:
    attempt = probe.count(job["job_id"])
    if attempt <= job["failures"]:
        raise RuntimeError(f"{job['job_id']} failed on attempt {attempt}")
    return {"status": "COMPLETED", "attempts": attempt}


@bp.activity_trigger(input_name="failure")
def job_fail(failure: dict[str, Any]) -> None:
    assert FAIL_ACTIVITY == "job_fail"
    with probe.lock:
        probe.failed_jobs.append(failure)


app = func.FunctionApp()
app.register_functions(bp)
