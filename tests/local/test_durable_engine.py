"""The local Durable engine runs the sample blueprint through the real SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from azure.durable_functions import OrchestrationRuntimeStatus
from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus,
)

from local.durable import (
    FunctionRegistry,
    HistoryStore,
    InMemoryHistoryStore,
    LocalDurableEngine,
)
from local.durable import history as h
from local.durable.history import ET
from local.durable.instance_state import InstanceState
from local.durable.replay import replay
from tests.local import sample_orchestrations as sample
from tests.local.sample_orchestrations import probe

Status = OrchestrationRuntimeStatus
TIMEOUT = 10

# A mis-numbered history makes the SDK warn and defer the result; fail instead.
pytestmark = pytest.mark.filterwarnings("error:Potential duplicate Task completion")


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    probe.reset()
    yield
    probe.release_all()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> HistoryStore:
    """Every behaviour on the in-memory store and on the SQL store the local runtime
    uses, on both databases."""
    if request.param == "memory":
        return InMemoryHistoryStore()
    from local.durable.sql_store import SqlHistoryStore

    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    return SqlHistoryStore(request.getfixturevalue(fixture))


@pytest.fixture
def engine(store: HistoryStore) -> Iterator[LocalDurableEngine]:
    with LocalDurableEngine(sample.app, store, max_workers=2, poll_interval=0.2) as eng:
        yield eng
        probe.release_all()


def run(
    engine: LocalDurableEngine, name: str, input: object = None
) -> DurableOrchestrationStatus:
    instance_id = engine.start_new(name, input=input)
    return engine.wait_for_completion(instance_id, timeout=TIMEOUT)


def events_of(store: HistoryStore, instance_id: str, kind: ET) -> list[h.Event]:
    return [e for e in store.load(instance_id).events if e["EventType"] == kind]


def test_discovers_orchestrators_and_activities_from_the_app() -> None:
    registry = FunctionRegistry.from_app(sample.app)
    assert {"sequential", "fan_out", "with_retry"} <= registry.orchestrators.keys()
    assert registry.activities["greet"].input_name == "name"
    # get_functions() can be indexed again (the SDK app refuses a second call).
    assert FunctionRegistry.from_app(sample.app).orchestrators.keys() == (
        registry.orchestrators.keys()
    )
    assert len(sample.app.get_functions()) > 0  # ...and the app is left as found


def test_sequential_activities(engine: LocalDurableEngine, store: HistoryStore) -> None:
    status = run(engine, "sequential", "ada")

    assert status.runtime_status == Status.Completed
    assert status.output == "HELLO ADA!"
    assert status.input_ == "ada"
    assert status.created_time <= status.last_updated_time
    history = store.load(status.instance_id).events
    for event in history:
        assert {"EventType", "EventId", "IsPlayed", "Timestamp"} <= event.keys()
    assert [e["Name"] for e in history if e["EventType"] == ET.TASK_SCHEDULED] == [
        "greet",
        "shout",
    ]
    assert history[0]["EventType"] == ET.ORCHESTRATOR_STARTED
    assert history[1]["EventType"] == ET.EXECUTION_STARTED
    assert history[-1]["EventType"] == ET.EXECUTION_COMPLETED


def test_fan_out_fan_in_keeps_input_order(
    engine: LocalDurableEngine, store: HistoryStore
) -> None:
    items = list(range(12))
    status = run(engine, "fan_out", items)

    assert status.runtime_status == Status.Completed
    assert status.output == {"squares": [i * i for i in items], "total": 506}
    scheduled = events_of(store, status.instance_id, ET.TASK_SCHEDULED)
    assert sorted(e["EventId"] for e in scheduled) == items


def test_retry_until_the_activity_succeeds(engine: LocalDurableEngine) -> None:
    spec = {"key": "flaky-ok", "failures": 2, "max_attempts": 3}
    status = run(engine, "with_retry", spec)

    assert status.runtime_status == Status.Completed
    assert status.output == {"attempts": 3}
    assert probe.calls["flaky-ok"] == 3


def test_retry_exhaustion_fails_with_the_activity_reason(
    engine: LocalDurableEngine,
) -> None:
    spec = {"key": "flaky-bad", "failures": 5, "max_attempts": 2}
    status = run(engine, "with_retry", spec)

    assert status.runtime_status == Status.Failed
    assert "flaky-bad failed on attempt 2" in status.output
    assert probe.calls["flaky-bad"] == 2


def test_retries_inside_task_all_interleave_with_plain_calls(
    engine: LocalDurableEngine,
) -> None:
    status = run(engine, "mixed_retries")

    assert status.runtime_status == Status.Completed, status.output
    assert status.output == [[{"attempts": 2}, 9, {"attempts": 3}], 16]
    assert (probe.calls["mix-a"], probe.calls["mix-b"]) == (2, 3)


def test_custom_status_is_visible_while_running(engine: LocalDurableEngine) -> None:
    instance_id = engine.start_new("custom_status")
    assert probe.started["status"].wait(TIMEOUT)

    running = engine.get_status(instance_id)
    assert running is not None
    assert running.runtime_status == Status.Running
    assert running.custom_status == {"stage": "waiting"}

    probe.gates["status"].set()
    done = engine.wait_for_completion(instance_id, timeout=TIMEOUT)
    assert done.custom_status == {"stage": "done"}
    assert done.output == "ok"


def test_terminate_reaches_the_running_activity(engine: LocalDurableEngine) -> None:
    instance_id = engine.start_new("cancellable", input="term")
    assert probe.started["term"].wait(TIMEOUT)

    engine.terminate(instance_id, "analyst cancelled the job")
    status = engine.wait_for_completion(instance_id, timeout=TIMEOUT)

    assert status.runtime_status == Status.Terminated
    assert status.output == "analyst cancelled the job"
    assert probe.observed_cancel.wait(TIMEOUT)
    assert engine.is_cancel_requested(instance_id)


def test_restart_resumes_without_rerunning_finished_activities(
    store: HistoryStore,
) -> None:
    first = LocalDurableEngine(sample.app, store)
    instance_id = first.start_new("pipeline")
    assert probe.started["restart"].wait(TIMEOUT)
    first.shutdown(wait=False)  # "crash" while the gated activity is still running

    assert store.load(instance_id).status == "Running"
    with LocalDurableEngine(sample.app, store) as second:
        assert second.resume_unfinished() == [instance_id]
        probe.gates["restart"].set()
        status = second.wait_for_completion(instance_id, timeout=TIMEOUT)

    assert status.runtime_status == Status.Completed
    assert status.output == ["first", "restart", "third"]
    # "first" completed before the crash; only the unfinished activity re-ran.
    assert probe.calls == {"first": 1, "restart": 2, "third": 1}
    assert len(events_of(store, instance_id, ET.TASK_COMPLETED)) == 3


def test_current_utc_datetime_is_stable_across_replays(
    engine: LocalDurableEngine, store: HistoryStore
) -> None:
    status = run(engine, "clock")

    out = status.output
    # t0 was recomputed in every replay; the activity saw the first episode's value.
    assert out["t0"] == out["echoed"]
    assert datetime.fromisoformat(out["t1"]) > datetime.fromisoformat(out["t0"])
    assert out["replaying"] is False
    first_start = store.load(status.instance_id).events[0]["Timestamp"]
    assert h.parse_time(first_start) == datetime.fromisoformat(out["t0"])


def test_unknown_orchestrator_on_resume_fails_with_reason(
    store: HistoryStore,
) -> None:
    now = h.utc_now()
    store.create_instance("ghost", "retired_orchestrator", json.dumps({"job": 1}))
    store.append_events(
        "ghost", [h.orchestrator_started(now), h.execution_started("x", None, now)]
    )
    store.set_status("ghost", "Running")

    with LocalDurableEngine(sample.app, store) as engine:
        assert engine.resume_unfinished() == []
        status = engine.get_status("ghost")

    assert status is not None
    assert status.runtime_status == Status.Failed
    assert "'retired_orchestrator' is not registered" in status.output
    assert store.list_unfinished() == []


def test_timer_fires_when_due(engine: LocalDurableEngine) -> None:
    started = time.monotonic()
    status = run(engine, "sleeper")

    assert status.runtime_status == Status.Completed
    assert time.monotonic() - started >= 0.05
    assert h.utc_now() >= datetime.fromisoformat(status.output)


def test_external_event_resumes_the_orchestrator(engine: LocalDurableEngine) -> None:
    instance_id = engine.start_new("approval")
    time.sleep(0.05)
    engine.raise_event(instance_id, "approval", {"approved": True})

    status = engine.wait_for_completion(instance_id, timeout=TIMEOUT)
    assert status.output == {"decision": {"approved": True}}


def test_orchestrator_can_catch_an_activity_failure(engine: LocalDurableEngine) -> None:
    status = run(engine, "catches_failure")

    assert status.output == {
        "caught": "Activity function 'flaky' failed: RuntimeError: always failed on attempt 1 "
    }


def test_unsupported_action_fails_with_reason(engine: LocalDurableEngine) -> None:
    status = run(engine, "uses_sub_orchestrator")

    assert status.runtime_status == Status.Failed
    assert "does not support CALL_SUB_ORCHESTRATOR" in status.output


def test_start_new_rejects_unknown_orchestrator(engine: LocalDurableEngine) -> None:
    with pytest.raises(KeyError):
        engine.start_new("nope")


def test_retry_ids_stay_in_step_with_the_sdk_when_results_arrive_together() -> None:
    """Drive episodes by hand: a plain result that resumes the orchestrator and a
    retry failure arrive in one batch, in the order that would mislead naive
    numbering (the SDK allocates the retry timer while processing the failure)."""
    handle = FunctionRegistry.from_app(sample.app).orchestrators["race_with_retry"]
    state = InstanceState("race", "race_with_retry", None)

    def episode(inbox: list[h.Event]) -> str:
        state.open_episode(inbox, h.utc_now())
        result = replay(handle, "race", None, state.events)
        return state.close_episode(result, h.utc_now()).status

    def scheduled(kind: ET) -> dict[int, str | None]:
        return {
            e["EventId"]: e.get("Name") for e in state.events if e["EventType"] == kind
        }

    assert episode([]) == "Running"
    assert scheduled(ET.TASK_SCHEDULED) == {0: "count", 1: "flaky"}

    now = h.utc_now()
    assert (
        episode([h.task_completed(0, '"b"', now), h.task_failed(1, "boom", "", now)])
        == "Running"
    )
    # SDK order: the failure allocates timer 2, then the resumed code asks for 3.
    assert list(scheduled(ET.TIMER_CREATED)) == [2]
    assert scheduled(ET.TASK_SCHEDULED)[3] == "count"

    fire_at = state.open_timers[2].fire_at_text
    assert episode([h.timer_fired(2, fire_at, now)]) == "Running"
    assert scheduled(ET.TASK_SCHEDULED)[4] == "flaky"  # the second attempt

    outcome_status = episode([h.task_completed(3, '"c"', now)])
    assert outcome_status == "Completed"
    result = replay(handle, "race", None, state.events)
    assert result.output == ["b", "c"]


def test_resume_from_a_hand_built_history_fires_overdue_timers_and_starts_pending(
    store: HistoryStore,
) -> None:
    """A store written by an engine that died: one instance waits on a timer that
    is already due, another was created but never ran."""
    then = h.utc_now()
    store.create_instance("napping", "sleeper", None)
    store.append_events(
        "napping",
        [
            h.orchestrator_started(then),
            h.execution_started("sleeper", None, then),
            h.timer_created(0, then, action_index=0, at=then),
            h.orchestrator_completed(then),
        ],
    )
    store.set_status("napping", "Running")
    store.create_instance("queued", "sequential", json.dumps("bob"))

    with LocalDurableEngine(sample.app, store) as engine:
        assert sorted(engine.resume_unfinished()) == ["napping", "queued"]
        napping = engine.wait_for_completion("napping", timeout=TIMEOUT)
        queued = engine.wait_for_completion("queued", timeout=TIMEOUT)

    assert napping.runtime_status == Status.Completed
    assert queued.output == "HELLO BOB!"


def test_terminate_requested_through_the_store_is_picked_up(
    engine: LocalDurableEngine, store: HistoryStore
) -> None:
    instance_id = engine.start_new("cancellable", input="remote")
    assert probe.started["remote"].wait(TIMEOUT)

    store.request_terminate(instance_id, "stopped from another process")

    status = engine.wait_for_completion(instance_id, timeout=TIMEOUT)
    assert status.runtime_status == Status.Terminated
    assert status.output == "stopped from another process"
    assert probe.observed_cancel.wait(TIMEOUT)


def test_only_the_thread_executor_is_available(store: HistoryStore) -> None:
    with pytest.raises(ValueError, match="executor"):
        LocalDurableEngine(sample.app, store, executor="process")


def test_the_generic_job_orchestrator_retries_its_activity(
    engine: LocalDurableEngine,
) -> None:
    job = {"job_id": "job-ok", "failures": 1}
    status = run(engine, sample.SAMPLE_JOB.orchestrator, job)

    assert status.runtime_status == Status.Completed
    assert status.output == {"status": "COMPLETED", "attempts": 2}
    assert status.custom_status == {"stage": "working"}
    assert probe.failed_jobs == []


def test_the_generic_job_orchestrator_fails_the_job_with_the_reason(
    engine: LocalDurableEngine,
) -> None:
    job = {"job_id": "job-bad", "failures": 5}
    status = run(engine, sample.SAMPLE_JOB.orchestrator, job)

    assert status.runtime_status == Status.Completed
    assert status.output["status"] == "FAILED"
    reason = status.output["error"]
    assert reason.endswith("job-bad failed on attempt 2")
    assert probe.failed_jobs == [{"job_id": "job-bad", "reason": reason}]
    assert probe.calls["job-bad"] == 2
