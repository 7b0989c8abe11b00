"""One call of an orchestrator through the Durable SDK's own replay executor.

The handle from ``get_user_function()`` is exactly what the Functions host
invokes: it takes the orchestration context as JSON text and returns the
orchestrator state as JSON text. When the orchestrator raises, the SDK raises
too, with the state appended after an ``$OutOfProcData$:`` marker; we parse it
the way the host does so failures keep their actions and custom status.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from azure.durable_functions.models.history import HistoryEventType
from azure.durable_functions.models.ReplaySchema import ReplaySchema

from local.durable.history import Event

OrchestratorHandle = Callable[[str], str]

REPLAY_SCHEMA = ReplaySchema.V2
"""V2 nests compound actions (task_all/task_any) and is what the host negotiates
with this SDK; V3 only adds long-timer splitting, which needs host settings."""

_OUT_OF_PROC_MARKER = "$OutOfProcData$:"


@dataclass(frozen=True)
class ReplayResult:
    """What one replay of the orchestrator asks for."""

    is_done: bool
    output: Any = None
    error: str | None = None
    custom_status: Any = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    """Atomic actions in the order the SDK numbered them (compounds flattened)."""


def context_json(
    instance_id: str, input_json: str | None, events: Sequence[Event]
) -> str:
    """Build the context the host would send; events before the last
    OrchestratorStarted are marked played, as the host does."""
    last_start = max(
        (
            i
            for i, e in enumerate(events)
            if e["EventType"] == HistoryEventType.ORCHESTRATOR_STARTED
        ),
        default=0,
    )
    history = [dict(e, IsPlayed=i < last_start) for i, e in enumerate(events)]
    return json.dumps(
        {
            "history": history,
            "instanceId": instance_id,
            "isReplaying": False,
            "parentInstanceId": None,
            "input": input_json,
            "upperSchemaVersion": REPLAY_SCHEMA.value,
        }
    )


def flatten_actions(actions: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Walk compound actions depth-first, which is the order the SDK assigns
    task ids to their children."""
    for action in actions:
        if isinstance(action, list):
            yield from flatten_actions(action)
        elif "compoundActions" in action:
            yield from flatten_actions(action["compoundActions"])
        else:
            yield action


def parse_state(state_json: str) -> ReplayResult:
    state = json.loads(state_json)
    error = state.get("error")
    return ReplayResult(
        is_done=bool(state.get("isDone")) or error is not None,
        output=state.get("output"),
        error=error,
        custom_status=state.get("customStatus"),
        actions=list(flatten_actions(state.get("actions", []))),
    )


def replay(
    handle: OrchestratorHandle,
    instance_id: str,
    input_json: str | None,
    events: Sequence[Event],
) -> ReplayResult:
    """Run the orchestrator over ``events`` and report what it wants next."""
    try:
        return parse_state(handle(context_json(instance_id, input_json, events)))
    except Exception as exc:  # the SDK signals orchestrator failure by raising
        message = str(exc)
        _, marker, state_json = message.partition(_OUT_OF_PROC_MARKER)
        if marker:
            try:
                parsed = parse_state(state_json)
            except ValueError:
                parsed = None
            if parsed is not None and parsed.error is not None:
                return parsed
        return ReplayResult(is_done=True, error=f"{type(exc).__name__}: {message}")
