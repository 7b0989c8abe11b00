"""Run one activity the way the Python worker would, and turn it into an event.

Input and output go through the worker's own ``ActivityTriggerConverter`` so
an activity sees the same values locally as on Azure.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import traceback

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from local.durable import history as h
from local.durable.cancellation import ActivityInvocation, current_invocation
from local.durable.history import Event
from local.durable.instance_state import OpenActivity
from local.durable.registry import ActivityFunction


def run_activity(
    activity: ActivityFunction | None,
    task: OpenActivity,
    instance_id: str,
    cancel_event: threading.Event,
) -> Event:
    """Call the activity and return its TaskCompleted or TaskFailed event."""
    if activity is None:
        return h.task_failed(
            task.task_id,
            f"Activity function '{task.name}' is not registered in this app",
            "",
            h.utc_now(),
        )
    token = current_invocation.set(
        ActivityInvocation(instance_id, task.task_id, task.name, cancel_event)
    )
    try:
        value = ActivityTriggerConverter.decode(
            meta.Datum(type="json", value=task.input_json or "null"),
            trigger_metadata=None,
        )
        result = activity.func(**{activity.input_name: value})
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        output = ActivityTriggerConverter.encode(result, expected_type=None).value
    except Exception as exc:
        return h.task_failed(
            task.task_id,
            f"Activity function '{task.name}' failed: {type(exc).__name__}: {exc}",
            "".join(traceback.format_exception(exc)),
            h.utc_now(),
        )
    finally:
        current_invocation.reset(token)
    return h.task_completed(task.task_id, output, h.utc_now())


async def _await(awaitable: object) -> object:
    return await awaitable  # type: ignore[misc]
