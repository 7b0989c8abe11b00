"""Builders for the history events the Durable SDK replays.

The shapes follow what the Durable host sends out-of-process (and what
``azure.durable_functions.models.history.HistoryEvent`` accepts): every event
has ``EventType``, ``EventId``, ``IsPlayed`` and ``Timestamp``, plus the fields
its type needs. Events are plain JSON-serialisable dicts so any store can keep
them as JSON. A few fields the SDK ignores (``ActionIndex``, ``RetryOptions``,
``RetryTimer``, ``FireAt``) are the local engine's own bookkeeping: they let a
restarted engine rebuild its state from the stored history alone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.constants import DATETIME_STRING_FORMAT
from azure.durable_functions.models.history import HistoryEventType

Event = dict[str, Any]
"""One history event, JSON-serialisable."""

ET = HistoryEventType

COMPLETION_TYPES = frozenset(
    {ET.TASK_COMPLETED, ET.TASK_FAILED, ET.TIMER_FIRED, ET.EVENT_RAISED}
)
"""Event types that deliver a result to the orchestrator (the engine's inbox)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """Format like the Durable host does, so the SDK parses an aware UTC time."""
    return moment.astimezone(UTC).strftime(DATETIME_STRING_FORMAT)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _event(
    event_type: HistoryEventType, event_id: int, at: datetime, **fields: Any
) -> Event:
    return {
        "EventType": int(event_type),
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": format_time(at),
        **fields,
    }


def orchestrator_started(at: datetime) -> Event:
    return _event(ET.ORCHESTRATOR_STARTED, -1, at)


def orchestrator_completed(at: datetime) -> Event:
    return _event(ET.ORCHESTRATOR_COMPLETED, -1, at)


def execution_started(name: str, input_json: str | None, at: datetime) -> Event:
    return _event(ET.EXECUTION_STARTED, -1, at, Name=name, Input=input_json, Version="")


def execution_completed(
    status: str, at: datetime, result: Any = None, error: str | None = None
) -> Event:
    """Close the history; ``status`` is Completed, Failed or Terminated."""
    fields: dict[str, Any] = {
        "OrchestrationStatus": status,
        "Result": json.dumps(result),
    }
    if error is not None:
        fields["FailureDetails"] = {"ErrorMessage": error}
    return _event(ET.EXECUTION_COMPLETED, -1, at, **fields)


def execution_terminated(reason: str, at: datetime) -> Event:
    return _event(ET.EXECUTION_TERMINATED, -1, at, Input=json.dumps(reason))


def task_scheduled(
    task_id: int,
    name: str,
    input_json: str | None,
    action_index: int,
    at: datetime,
    retry_options: dict[str, int] | None = None,
) -> Event:
    fields: dict[str, Any] = {
        "Name": name,
        "Input": input_json,
        "ActionIndex": action_index,
    }
    if retry_options is not None:
        fields["RetryOptions"] = retry_options
    return _event(ET.TASK_SCHEDULED, task_id, at, **fields)


def task_completed(task_id: int, result_json: str, at: datetime) -> Event:
    return _event(
        ET.TASK_COMPLETED, -1, at, TaskScheduledId=task_id, Result=result_json
    )


def task_failed(task_id: int, reason: str, details: str, at: datetime) -> Event:
    return _event(
        ET.TASK_FAILED, -1, at, TaskScheduledId=task_id, Reason=reason, Details=details
    )


def timer_created(
    timer_id: int,
    fire_at: datetime,
    action_index: int,
    at: datetime,
    retry: bool = False,
) -> Event:
    return _event(
        ET.TIMER_CREATED,
        timer_id,
        at,
        FireAt=format_time(fire_at),
        ActionIndex=action_index,
        RetryTimer=retry,
    )


def timer_fired(timer_id: int, fire_at: str, at: datetime) -> Event:
    return _event(ET.TIMER_FIRED, -1, at, TimerId=timer_id, FireAt=fire_at)


def event_raised(name: str, input_json: str, at: datetime) -> Event:
    return _event(ET.EVENT_RAISED, -1, at, Name=name, Input=input_json)
