"""Run Durable orchestrations in-process, with their history in a store.

One dispatcher thread runs *episodes*: it feeds the orchestrator handle the
history so far plus the results that arrived (through the SDK's own replay
executor, see :mod:`local.durable.replay`), records the actions it asks for,
and hands activities to a thread pool so callers stay responsive. Results and
due timers wake the dispatcher; it sleeps otherwise. Every episode is appended
to the store in one call, so a restarted engine resumes from a consistent
history (activities scheduled but without a result run again, which is why
activities must be idempotent).

Cancellation is cooperative: :meth:`LocalDurableEngine.terminate` ends the
instance at its next episode and sets the cancel flag that running activities
read through :func:`local.durable.cancellation.is_cancel_requested`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import azure.functions as func
from azure.durable_functions.models.DurableOrchestrationStatus import (
    DurableOrchestrationStatus,
)

from local.durable import history as h
from local.durable.activity_runner import run_activity
from local.durable.instance_state import InstanceState, OpenActivity, terminal_status
from local.durable.registry import FunctionRegistry
from local.durable.replay import OrchestratorHandle, replay
from local.durable.store import (
    FAILED,
    FINISHED,
    RUNNING,
    TERMINATED,
    HistoryStore,
)

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Live:
    """An instance this engine is driving."""

    state: InstanceState
    handle: OrchestratorHandle
    cancel: threading.Event = field(default_factory=threading.Event)
    submitted: set[int] = field(default_factory=set)
    armed: set[int] = field(default_factory=set)


class LocalDurableEngine:
    """The Durable runtime for one machine; the same orchestrators as on Azure.

    Supports activities (with and without retry), ``task_all``/``task_any``,
    timers, external events and custom status. Sub-orchestrations, entities,
    durable HTTP and ``continue_as_new`` end the instance Failed with a reason.
    """

    def __init__(
        self,
        app: func.FunctionRegister | FunctionRegistry,
        store: HistoryStore,
        max_workers: int = 2,
        executor: str = "thread",
        *,
        poll_interval: float = 1.0,
    ) -> None:
        """``poll_interval`` is how often (seconds) the store is checked for
        terminate requests made by other processes."""
        if executor != "thread":
            raise ValueError(
                f"unsupported executor {executor!r}; only 'thread' is available"
            )
        self._registry = (
            app if isinstance(app, FunctionRegistry) else FunctionRegistry.from_app(app)
        )
        self._store = store
        self._poll_interval = poll_interval
        self._pool = ThreadPoolExecutor(
            max_workers, thread_name_prefix="durable-activity"
        )
        self._cond = threading.Condition()
        self._live: dict[str, _Live] = {}
        self._inbox: dict[str, list[h.Event]] = {}
        self._ready: dict[str, None] = {}  # ordered set of ids awaiting an episode
        self._timers: list[tuple[datetime, int, str, int]] = []
        self._tiebreak = itertools.count()
        self._cancelled: dict[str, str] = {}  # id -> terminate reason
        self._finished_count = 0
        self._stopping = False
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name="durable-dispatcher", daemon=True
        )
        self._dispatcher.start()

    # --- client API --------------------------------------------------------

    def start_new(
        self, orchestrator_name: str, instance_id: str | None = None, input: Any = None
    ) -> str:
        """Create the instance (Pending) and queue its first episode."""
        handle = self._registry.orchestrators.get(orchestrator_name)
        if handle is None:
            raise KeyError(f"orchestrator {orchestrator_name!r} is not registered")
        with self._cond:
            self._check_running()
        instance_id = instance_id or uuid.uuid4().hex
        input_json = None if input is None else json.dumps(input)
        self._store.create_instance(instance_id, orchestrator_name, input_json)
        state = InstanceState(instance_id, orchestrator_name, input_json)
        with self._cond:
            self._check_running()
            self._live[instance_id] = _Live(state, handle)
            self._wake_locked(instance_id)
        return instance_id

    def get_status(self, instance_id: str) -> DurableOrchestrationStatus | None:
        """The SDK's own status object, as the Durable client returns on Azure;
        ``output`` holds the error for Failed and the reason for Terminated."""
        try:
            record = self._store.load(instance_id)
        except KeyError:
            return None
        return DurableOrchestrationStatus(
            name=record.name,
            instanceId=instance_id,
            createdTime=h.format_time(record.created_time),
            lastUpdatedTime=h.format_time(record.last_updated_time),
            input=None if record.input is None else json.loads(record.input),
            output=record.error if record.status == FAILED else record.output,
            runtimeStatus=record.status,
            customStatus=record.custom_status,
        )

    def terminate(self, instance_id: str, reason: str) -> None:
        """Ask the instance to end Terminated; no-op if it already finished."""
        if self._store.load(instance_id).status in FINISHED:
            return
        self._store.request_terminate(instance_id, reason)
        with self._cond:
            self._cancelled.setdefault(instance_id, reason)
            live = self._live.get(instance_id)
            if live is not None:
                live.cancel.set()
                self._wake_locked(instance_id)

    def is_cancel_requested(self, instance_id: str) -> bool:
        """True once a terminate was requested (here or through the store)."""
        with self._cond:
            if instance_id in self._cancelled:
                return True
        return self._store.is_terminate_requested(instance_id)

    def raise_event(
        self, instance_id: str, event_name: str, event_data: Any = None
    ) -> None:
        """Deliver an external event to a running instance."""
        event = h.event_raised(event_name, json.dumps(event_data), h.utc_now())
        with self._cond:
            if instance_id not in self._live:
                raise KeyError(
                    f"instance {instance_id!r} is not running in this engine"
                )
            self._inbox.setdefault(instance_id, []).append(event)
            self._wake_locked(instance_id)

    def wait_for_completion(
        self, instance_id: str, timeout: float | None = None
    ) -> DurableOrchestrationStatus:
        """Block until the instance finished; TimeoutError after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._finished_count
            status = self.get_status(instance_id)
            if status is None:
                raise KeyError(instance_id)
            if status.runtime_status.value in FINISHED:
                return status
            wait = self._poll_interval
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(
                        f"instance {instance_id} still {status.runtime_status.value} "
                        f"after {timeout}s"
                    )
            with self._cond:
                if self._finished_count == seen:
                    self._cond.wait(wait)

    def resume_unfinished(self) -> list[str]:
        """Take over every Pending/Running instance in the store.

        Each continues from its stored history; one whose orchestrator is gone,
        or whose code no longer replays, ends Failed with the reason. Returns
        the ids now running in this engine.
        """
        with self._cond:
            self._check_running()
        resumed = []
        for instance_id in self._store.list_unfinished():
            with self._cond:
                if instance_id in self._live:
                    continue
            try:
                if self._resume(instance_id):
                    resumed.append(instance_id)
            except Exception as exc:
                logger.exception("could not resume orchestration %s", instance_id)
                self._fail_unloaded(
                    instance_id, f"could not resume after restart: {exc}"
                )
        return resumed

    def shutdown(self, wait: bool = True) -> None:
        """Stop dispatching. Results that arrive later are dropped: their
        instances stay Running in the store until resume_unfinished()."""
        with self._cond:
            if self._stopping:
                return
            self._stopping = True
            self._cond.notify_all()
        self._dispatcher.join()
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> LocalDurableEngine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    # --- resume ------------------------------------------------------------

    def _resume(self, instance_id: str) -> bool:
        record = self._store.load(instance_id)
        ended = terminal_status(record.events)
        if ended is not None:  # the history finished but the status write was lost
            status, output, error = ended
            self._store.set_status(
                instance_id, status, output, error, record.custom_status
            )
            return False
        state = InstanceState.from_history(
            instance_id, record.name, record.input, record.events
        )
        state.custom_status = record.custom_status
        if record.terminate_reason is not None:
            self._finish(state, TERMINATED, record.terminate_reason)
            return False
        handle = self._registry.orchestrators.get(record.name)
        if handle is None:
            self._finish(
                state,
                FAILED,
                f"orchestrator {record.name!r} is not registered in this app; "
                "the instance cannot resume",
            )
            return False
        needs_episode = not record.events
        if record.events:
            result = replay(handle, instance_id, record.input, state.events)
            if result.error is not None:
                self._finish(
                    state, FAILED, f"replay after restart failed: {result.error}"
                )
                return False
            state.adopt_actions(result.actions, h.utc_now())
            state.custom_status = result.custom_status
            needs_episode = result.is_done or state.is_stalled
        live = _Live(state, handle)
        with self._cond:
            if self._stopping:
                return False  # shut down meanwhile; the next engine resumes it
            self._live[instance_id] = live
            self._dispatch_locked(instance_id, live)
            if needs_episode:
                self._wake_locked(instance_id)
        return True

    def _fail_unloaded(self, instance_id: str, message: str) -> None:
        try:
            record = self._store.load(instance_id)
            state = InstanceState.from_history(
                instance_id, record.name, record.input, record.events
            )
            self._finish(state, FAILED, message)
        except Exception:
            logger.exception("could not mark orchestration %s failed", instance_id)

    # --- dispatcher --------------------------------------------------------

    def _dispatch_loop(self) -> None:
        next_poll = time.monotonic() + self._poll_interval
        while True:
            instance_id: str | None = None
            with self._cond:
                while not self._stopping:
                    self._fire_due_timers_locked()
                    if self._ready:
                        instance_id = next(iter(self._ready))
                        del self._ready[instance_id]
                        break
                    if time.monotonic() >= next_poll:
                        break
                    self._cond.wait(self._sleep_seconds_locked(next_poll))
                if self._stopping:
                    return
            if instance_id is None:
                try:
                    self._poll_terminate_requests()
                except Exception:
                    logger.exception("polling the store for terminate requests failed")
                next_poll = time.monotonic() + self._poll_interval
            else:
                self._run_episode_safely(instance_id)

    def _sleep_seconds_locked(self, next_poll: float) -> float:
        sleep = next_poll - time.monotonic()
        if self._timers:
            sleep = min(sleep, (self._timers[0][0] - h.utc_now()).total_seconds())
        return max(sleep, 0.001)

    def _fire_due_timers_locked(self) -> None:
        now = h.utc_now()
        while self._timers and self._timers[0][0] <= now:
            _, _, instance_id, timer_id = heapq.heappop(self._timers)
            live = self._live.get(instance_id)
            timer = None if live is None else live.state.open_timers.get(timer_id)
            if timer is None:
                continue  # instance gone or timer cancelled
            self._inbox.setdefault(instance_id, []).append(
                h.timer_fired(timer_id, timer.fire_at_text, now)
            )
            self._ready[instance_id] = None

    def _poll_terminate_requests(self) -> None:
        with self._cond:
            ids = list(self._live)
        for instance_id in ids:
            if self._store.is_terminate_requested(instance_id):
                with self._cond:
                    live = self._live.get(instance_id)
                    if live is not None and not live.cancel.is_set():
                        live.cancel.set()
                        self._ready[instance_id] = None

    def _run_episode_safely(self, instance_id: str) -> None:
        with self._cond:
            live = self._live.get(instance_id)
            inbox = self._inbox.pop(instance_id, [])
        if live is None:
            return
        try:
            self._run_episode(instance_id, live, inbox)
        except Exception as exc:
            logger.exception("orchestration %s: local engine error", instance_id)
            try:
                self._finish(live.state, FAILED, f"local Durable engine error: {exc}")
            except Exception:
                logger.exception("could not mark orchestration %s failed", instance_id)
            self._forget(instance_id)

    def _run_episode(self, instance_id: str, live: _Live, inbox: list[h.Event]) -> None:
        state = live.state
        if live.cancel.is_set() or self._store.is_terminate_requested(instance_id):
            live.cancel.set()
            with self._cond:
                reason = self._cancelled.get(instance_id)
            if reason is None:
                reason = self._store.load(instance_id).terminate_reason or ""
            self._finish(state, TERMINATED, reason)
            self._forget(instance_id)
            return
        batch = state.open_episode(inbox, h.utc_now())
        result = replay(live.handle, instance_id, state.input_json, state.events)
        outcome = state.close_episode(result, h.utc_now())
        self._store.append_events(instance_id, batch + outcome.events)
        self._store.set_status(
            instance_id,
            outcome.status,
            output=outcome.output,
            error=outcome.error,
            custom_status=state.custom_status,
        )
        if outcome.status == RUNNING:
            with self._cond:
                self._dispatch_locked(instance_id, live)
        else:
            self._forget(instance_id)

    def _finish(self, state: InstanceState, status: str, message: str) -> None:
        """End an instance outside a normal episode (terminate or failure)."""
        events = state.finish_events(status, h.utc_now(), message)
        self._store.append_events(state.instance_id, events)
        self._store.set_status(
            state.instance_id,
            status,
            output=message if status == TERMINATED else None,
            error=message if status == FAILED else None,
            custom_status=state.custom_status,
        )
        with self._cond:
            self._finished_count += 1
            self._cond.notify_all()

    def _forget(self, instance_id: str) -> None:
        with self._cond:
            self._live.pop(instance_id, None)
            self._inbox.pop(instance_id, None)
            self._ready.pop(instance_id, None)
            self._finished_count += 1
            self._cond.notify_all()

    def _dispatch_locked(self, instance_id: str, live: _Live) -> None:
        """Start activities and arm timers that are open but not yet handled."""
        if self._stopping:
            return
        for task in live.state.open_activities.values():
            if task.task_id not in live.submitted:
                live.submitted.add(task.task_id)
                self._pool.submit(self._activity_worker, instance_id, live, task)
        for timer in live.state.open_timers.values():
            if timer.timer_id not in live.armed:
                live.armed.add(timer.timer_id)
                entry = (
                    timer.fire_at,
                    next(self._tiebreak),
                    instance_id,
                    timer.timer_id,
                )
                heapq.heappush(self._timers, entry)
        self._cond.notify_all()

    def _activity_worker(
        self, instance_id: str, live: _Live, task: OpenActivity
    ) -> None:
        activity = self._registry.activities.get(task.name)
        event = run_activity(activity, task, instance_id, live.cancel)
        with self._cond:
            if self._stopping or self._live.get(instance_id) is not live:
                return  # the instance finished, or the engine stopped (it will re-run)
            self._inbox.setdefault(instance_id, []).append(event)
            self._wake_locked(instance_id)

    def _wake_locked(self, instance_id: str) -> None:
        self._ready[instance_id] = None
        self._cond.notify_all()

    def _check_running(self) -> None:
        if self._stopping:
            raise RuntimeError("the local Durable engine was shut down")
