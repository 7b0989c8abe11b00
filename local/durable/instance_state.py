"""Per-instance bookkeeping: which task ids the SDK expects, and what is open.

The SDK numbers tasks itself (a sequence counter advanced each time the
orchestrator yields a new task, and each time a ``call_activity_with_retry``
needs a retry timer or a new attempt) and only reports *actions*, never ids.
Like the Durable Task Framework, we therefore replay the same numbering: every
id the SDK allocates is recorded as a TaskScheduled or TimerCreated event, so
the next id is always ``max(recorded id) + 1``.

Retries are where the numbering can diverge: the SDK allocates a retry timer
while it processes a TaskFailed, and a new attempt while it processes that
timer's TimerFired, interleaved with whatever the orchestrator yields after
other completions. To keep the order predictable, each episode puts those
retry events first (they never resume orchestrator code), then the events that
may resume it; any ids for newly yielded actions then follow in action order.

This class is pure bookkeeping with no threads or I/O; the engine drives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType

from local.durable import history as h
from local.durable.history import ET, Event
from local.durable.replay import ReplayResult
from local.durable.store import COMPLETED, FAILED, RUNNING, TERMINATED

_SUPPORTED = frozenset(
    {
        ActionType.CALL_ACTIVITY,
        ActionType.CALL_ACTIVITY_WITH_RETRY,
        ActionType.CREATE_TIMER,
        ActionType.WAIT_FOR_EXTERNAL_EVENT,
    }
)


class UnsupportedActionError(Exception):
    """The orchestrator asked for something the local engine cannot do."""


@dataclass
class OpenActivity:
    task_id: int
    name: str
    input_json: str | None
    action_index: int


@dataclass
class OpenTimer:
    timer_id: int
    fire_at: datetime
    fire_at_text: str
    action_index: int
    retry: bool


@dataclass
class RetryGroup:
    """All attempts and timers of one ``call_activity_with_retry`` action."""

    action_index: int
    name: str
    input_json: str | None
    options: dict[str, int]
    attempts: int = 0

    @property
    def interval(self) -> timedelta:
        return timedelta(milliseconds=self.options["firstRetryIntervalInMilliseconds"])

    @property
    def attempts_left(self) -> bool:
        return self.attempts < self.options["maxNumberOfAttempts"]


@dataclass
class EpisodeOutcome:
    """Events that close an episode, and the instance status they lead to."""

    events: list[Event]
    status: str  # RUNNING, COMPLETED or FAILED
    output: Any = None
    error: str | None = None


@dataclass
class InstanceState:
    instance_id: str
    name: str
    input_json: str | None
    events: list[Event] = field(default_factory=list)
    next_id: int = 0
    action_count: int = 0
    custom_status: Any = None
    waits_for_events: bool = False
    finished: bool = False
    open_activities: dict[int, OpenActivity] = field(default_factory=dict)
    open_timers: dict[int, OpenTimer] = field(default_factory=dict)
    retry_groups: dict[int, RetryGroup] = field(default_factory=dict)
    _retry_of: dict[int, RetryGroup] = field(default_factory=dict)

    @classmethod
    def from_history(
        cls,
        instance_id: str,
        name: str,
        input_json: str | None,
        events: Iterable[Event],
    ) -> InstanceState:
        """Rebuild bookkeeping from stored events (``action_count`` comes from a
        replay; see :meth:`adopt_actions`)."""
        state = cls(instance_id, name, input_json)
        for event in events:
            state._apply(event)
        return state

    # --- episode -----------------------------------------------------------

    def open_episode(self, inbox: Sequence[Event], now: datetime) -> list[Event]:
        """Append OrchestratorStarted and the new results, retry events first.

        Returns the appended events (to be persisted with the episode's tail).
        """
        batch = [h.orchestrator_started(now)]
        if not self.events:
            batch.append(h.execution_started(self.name, self.input_json, now))
        retry_events: list[Event] = []
        resuming: list[Event] = []
        for event in inbox:
            if not self._is_open(event):
                continue  # a late or duplicate result; the SDK would only warn
            if self._allocates_retry_id(event):
                retry_events.append(event)
            else:
                resuming.append(event)
        for event in batch:
            self._apply(event)
        for event in retry_events:
            follow_up = self._retry_follow_up(event, now)
            self._apply(event)
            self._apply(follow_up)
            batch += [event, follow_up]
        for event in resuming:
            self._apply(event)
            batch.append(event)
        return batch

    def close_episode(self, result: ReplayResult, now: datetime) -> EpisodeOutcome:
        """Record the actions the replay asked for and decide the status."""
        self.custom_status = result.custom_status
        outcome = EpisodeOutcome([], RUNNING)
        if result.error is not None:
            outcome.status, outcome.error = FAILED, result.error
        elif result.is_done:
            outcome.status, outcome.output = COMPLETED, result.output
        else:
            try:
                outcome.events += self.sync_actions(result.actions, now)
            except UnsupportedActionError as exc:
                outcome.status, outcome.error = FAILED, str(exc)
            else:
                if self.is_stalled:
                    outcome.status = FAILED
                    outcome.error = (
                        "the orchestration waits on nothing the local engine can "
                        "deliver (no activity, timer or external event is pending)"
                    )
        closing = [h.orchestrator_completed(now)]
        if outcome.status != RUNNING:
            closing.append(
                h.execution_completed(
                    outcome.status, now, outcome.output, outcome.error
                )
            )
        for event in closing:
            self._apply(event)
        outcome.events += closing
        return outcome

    def finish_events(self, status: str, now: datetime, message: str) -> list[Event]:
        """Events that end the instance outside an episode (failure or terminate);
        ``message`` is the error or the terminate reason."""
        if status == TERMINATED:
            events = [
                h.execution_terminated(message, now),
                h.execution_completed(status, now, result=message),
            ]
        else:
            events = [h.execution_completed(status, now, error=message)]
        for event in events:
            self._apply(event)
        return events

    def adopt_actions(self, actions: Sequence[dict[str, Any]], now: datetime) -> None:
        """After a restart: the stored history already scheduled these actions."""
        self.action_count = len(actions)
        self.sync_actions(actions, now)

    def sync_actions(
        self, actions: Sequence[dict[str, Any]], now: datetime
    ) -> list[Event]:
        """Schedule actions not seen yet; forget timers the orchestrator cancelled.

        Raises UnsupportedActionError before recording anything, so a failed
        episode leaves no half-scheduled work behind.
        """
        new_actions = list(enumerate(actions))[self.action_count :]
        for _, action in new_actions:
            if action["actionType"] not in _SUPPORTED:
                raise UnsupportedActionError(
                    "the local Durable engine does not support "
                    f"{ActionType(action['actionType']).name} (action {json.dumps(action)})"
                )
        scheduled: list[Event] = []
        for index, action in new_actions:
            event = self._schedule(action, index, now)
            if event is not None:
                self._apply(event)
                scheduled.append(event)
        self.action_count = max(self.action_count, len(actions))
        self.waits_for_events = any(
            a["actionType"] == ActionType.WAIT_FOR_EXTERNAL_EVENT for a in actions
        )
        for timer_id, timer in list(self.open_timers.items()):
            action = (
                actions[timer.action_index] if timer.action_index < len(actions) else {}
            )
            if not timer.retry and action.get("isCanceled"):
                del self.open_timers[timer_id]
        return scheduled

    @property
    def is_stalled(self) -> bool:
        return not (self.open_activities or self.open_timers or self.waits_for_events)

    # --- internals ---------------------------------------------------------

    def _schedule(
        self, action: dict[str, Any], index: int, now: datetime
    ) -> Event | None:
        kind = action["actionType"]
        if kind == ActionType.CREATE_TIMER:
            return h.timer_created(
                self.next_id, h.parse_time(action["fireAt"]), index, now
            )
        if kind == ActionType.WAIT_FOR_EXTERNAL_EVENT:
            return None  # external events are matched by name and take no id
        return h.task_scheduled(
            self.next_id,
            action["functionName"],
            action.get("input"),
            index,
            now,
            retry_options=action.get("retryOptions"),
        )

    def _is_open(self, event: Event) -> bool:
        kind = event["EventType"]
        if kind in (ET.TASK_COMPLETED, ET.TASK_FAILED):
            return event["TaskScheduledId"] in self.open_activities
        if kind == ET.TIMER_FIRED:
            return event["TimerId"] in self.open_timers
        return True

    def _allocates_retry_id(self, event: Event) -> bool:
        kind = event["EventType"]
        if kind == ET.TASK_FAILED:
            return event["TaskScheduledId"] in self._retry_of
        if kind == ET.TIMER_FIRED:
            group = self._retry_of.get(event["TimerId"])
            return group is not None and group.attempts_left
        return False

    def _retry_follow_up(self, event: Event, now: datetime) -> Event:
        """The event for the id the SDK allocates while processing ``event``."""
        if event["EventType"] == ET.TASK_FAILED:
            group = self._retry_of[event["TaskScheduledId"]]
            # The SDK waits for one timer after every failed attempt, even the last.
            return h.timer_created(
                self.next_id, now + group.interval, group.action_index, now, retry=True
            )
        group = self._retry_of[event["TimerId"]]
        return h.task_scheduled(
            self.next_id,
            group.name,
            group.input_json,
            group.action_index,
            now,
            retry_options=group.options,
        )

    def _apply(self, event: Event) -> None:
        self.events.append(event)
        kind = event["EventType"]
        if kind == ET.TASK_SCHEDULED:
            task_id = event["EventId"]
            self.next_id = max(self.next_id, task_id + 1)
            index = event.get("ActionIndex", -1)
            self.open_activities[task_id] = OpenActivity(
                task_id, event["Name"], event.get("Input"), index
            )
            if "RetryOptions" in event:
                group = self.retry_groups.setdefault(
                    index,
                    RetryGroup(
                        index, event["Name"], event.get("Input"), event["RetryOptions"]
                    ),
                )
                group.attempts += 1
                self._retry_of[task_id] = group
        elif kind in (ET.TASK_COMPLETED, ET.TASK_FAILED):
            self.open_activities.pop(event["TaskScheduledId"], None)
        elif kind == ET.TIMER_CREATED:
            timer_id = event["EventId"]
            self.next_id = max(self.next_id, timer_id + 1)
            index = event.get("ActionIndex", -1)
            retry = bool(event.get("RetryTimer"))
            self.open_timers[timer_id] = OpenTimer(
                timer_id, h.parse_time(event["FireAt"]), event["FireAt"], index, retry
            )
            if retry:
                self._retry_of[timer_id] = self.retry_groups[index]
        elif kind == ET.TIMER_FIRED:
            self.open_timers.pop(event["TimerId"], None)
        elif kind in (ET.EXECUTION_COMPLETED, ET.EXECUTION_TERMINATED):
            self.finished = True
            self.open_activities.clear()
            self.open_timers.clear()


def terminal_status(events: Sequence[Event]) -> tuple[str, Any, str | None] | None:
    """(status, output, error) if the history already ended, else None."""
    for event in reversed(events):
        if event["EventType"] == ET.EXECUTION_COMPLETED:
            status = event["OrchestrationStatus"]
            error = (event.get("FailureDetails") or {}).get("ErrorMessage")
            return status, json.loads(event.get("Result") or "null"), error
    return None
