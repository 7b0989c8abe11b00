"""The retraining orchestration as the Durable runtime sees it: the functions the app
declares, and the orchestrator replayed through the SDK episode by episode (the
activities' answers fed by hand), including a replay of a stored history, which is how
a restarted runtime carries a job on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.durable import FunctionRegistry
from local.durable import history as h
from local.durable.history import ET
from local.durable.instance_state import InstanceState
from local.durable.replay import OrchestratorHandle, replay

STEP_ACTIVITIES = [
    "retraining_assemble",
    "retraining_features",
    "retraining_train",
    "retraining_evaluate",
    "retraining_gates",
    "retraining_promote",
]

pytestmark = pytest.mark.filterwarnings("error:Potential duplicate Task completion")


@pytest.fixture(scope="module")
def registry() -> FunctionRegistry:
    import function_app

    return FunctionRegistry.from_app(function_app.app)


class Driver:
    """One instance of the orchestrator, its episodes run by hand."""

    def __init__(self, handle: OrchestratorHandle, job_id: str = "J") -> None:
        self.handle = handle
        self.input = json.dumps({"job_id": job_id})
        self.state = InstanceState(job_id, "retraining_orchestrator", self.input)
        self.status = self.episode([])

    def episode(self, inbox: list[h.Event]) -> str:
        self.state.open_episode(inbox, h.utc_now())
        result = replay(
            self.handle, self.state.instance_id, self.input, self.state.events
        )
        return self.state.close_episode(result, h.utc_now()).status

    def scheduled(self) -> list[tuple[int, str, Any]]:
        return [
            (e["EventId"], e["Name"], json.loads(e["Input"]))
            for e in self.state.events
            if e["EventType"] == ET.TASK_SCHEDULED
        ]

    def last(self) -> tuple[int, str, Any]:
        return self.scheduled()[-1]

    def answer(self, result: dict[str, Any]) -> str:
        task_id = self.last()[0]
        self.status = self.episode(
            [h.task_completed(task_id, json.dumps(result), h.utc_now())]
        )
        return self.status

    def fail(self, reason: str) -> str:
        """The last activity fails; the SDK then waits out the retry timer it sets
        after every failed attempt, the last one too."""
        task_id = self.last()[0]
        now = h.utc_now()
        self.episode([h.task_failed(task_id, reason, "", now)])
        (timer_id, timer), *_ = self.state.open_timers.items()
        self.status = self.episode([h.timer_fired(timer_id, timer.fire_at_text, now)])
        return self.status


def test_the_app_declares_the_orchestrator_and_every_step(
    registry: FunctionRegistry,
) -> None:
    assert "retraining_orchestrator" in registry.orchestrators
    for name in [*STEP_ACTIVITIES, "retraining_finish", "retraining_fail"]:
        activity = registry.activities[name]
        assert activity.name == name
    assert registry.activities["retraining_train"].input_name == "refs"


def test_each_step_gets_the_ids_the_earlier_ones_made(
    registry: FunctionRegistry,
) -> None:
    run = Driver(registry.orchestrators["retraining_orchestrator"])
    assert run.status == "Running"
    assert run.last()[1:] == ("retraining_assemble", {"job_id": "J"})
    assert run.state.custom_status == {"stage": "assemble"}

    run.answer({"status": "OK", "dataset_id": "D", "dataset_version": "1.0"})
    assert run.last()[1:] == (
        "retraining_features",
        {"job_id": "J", "dataset_id": "D", "dataset_version": "1.0"},
    )

    # a runtime that restarts here replays the stored history and asks for nothing
    # new: the features step stays the one outstanding
    again = InstanceState.from_history(
        "J", "retraining_orchestrator", run.input, run.state.events
    )
    resumed = replay(run.handle, "J", run.input, again.events)
    assert not resumed.is_done and resumed.custom_status == {"stage": "features"}
    assert [a["functionName"] for a in resumed.actions] == [
        "retraining_assemble",
        "retraining_features",
    ]

    run.answer({"status": "OK", "feature_set_id": "F"})
    assert run.last()[1] == "retraining_train"
    assert run.last()[2]["feature_set_id"] == "F"
    run.answer({"status": "OK", "challenger_model_id": "C"})
    assert run.last()[1] == "retraining_evaluate"
    assert run.last()[2]["challenger_model_id"] == "C"
    run.answer({"status": "OK"})
    assert run.last()[1] == "retraining_gates"
    run.answer({"status": "OK", "promote": True})
    assert run.last()[1] == "retraining_promote"
    assert "promote" not in run.last()[2]
    run.answer({"status": "OK"})
    assert run.last()[1:] == ("retraining_finish", {"job_id": "J"})
    assert run.answer({"status": "COMPLETED", "decided_by": "all_gates_passed"}) == (
        "Completed"
    )
    assert [name for _, name, _ in run.scheduled()] == [
        *STEP_ACTIVITIES,
        "retraining_finish",
    ]


def test_without_promotion_the_job_finishes_after_the_gates(
    registry: FunctionRegistry,
) -> None:
    run = Driver(registry.orchestrators["retraining_orchestrator"])
    run.answer({"status": "OK", "dataset_id": "D", "dataset_version": "1.0"})
    run.answer({"status": "OK", "feature_set_id": "F"})
    run.answer({"status": "OK", "challenger_model_id": "C"})
    run.answer({"status": "OK"})
    run.answer({"status": "OK", "promote": False})
    assert run.last()[1] == "retraining_finish"


def test_a_failed_step_ends_the_job_naming_it(registry: FunctionRegistry) -> None:
    run = Driver(registry.orchestrators["retraining_orchestrator"])
    run.answer({"status": "OK", "dataset_id": "D", "dataset_version": "1.0"})
    run.answer({"status": "FAILED", "error": "no label (field: is_fraud)"})
    assert run.last()[1:] == (
        "retraining_fail",
        {"job_id": "J", "step": "features", "reason": "no label (field: is_fraud)"},
    )
    assert run.answer({}) == "Completed"
    assert run.state.custom_status == {"stage": "failed", "step": "features"}


def test_an_activity_that_raises_past_its_retries_fails_the_job(
    registry: FunctionRegistry,
) -> None:
    """Training has one attempt: its exception goes straight to the fail step."""
    run = Driver(registry.orchestrators["retraining_orchestrator"])
    run.answer({"status": "OK", "dataset_id": "D", "dataset_version": "1.0"})
    run.answer({"status": "OK", "feature_set_id": "F"})
    run.fail("MemoryError: out of memory")
    name, failure = run.last()[1:]
    assert name == "retraining_fail"
    assert failure["step"] == "train" and "out of memory" in failure["reason"]


def test_a_cancelled_job_stops_before_its_next_step(registry: FunctionRegistry) -> None:
    run = Driver(registry.orchestrators["retraining_orchestrator"])
    assert run.answer({"status": "CANCELLED"}) == "Completed"
    assert [name for _, name, _ in run.scheduled()] == ["retraining_assemble"]
