"""The local runtime's timers: the app's timer functions on the schedules their
bindings declare, as the Functions host runs them.

The functions and their NCRONTAB expressions come from the function app's own index
(``get_functions()``), so a schedule is set in one place. Next occurrences come from
croniter with the seconds field first and day-of-month AND day-of-week, as NCRONTAB
reads them; times are UTC, the host's default. Each function runs on its own thread,
one invocation at a time. One that starts late (the previous run overran its next
occurrence, or the machine slept) is marked ``past_due``, and the occurrences missed
meanwhile run once, not one by one. An error is logged and the schedule goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import azure.functions as func
from azure.functions.timer import TimerRequest
from croniter import CroniterError, croniter

log = logging.getLogger("shadow_hubble.local.timers")

TIMER_TRIGGER = "timerTrigger"
PAST_DUE_AFTER = 1.0  # seconds late at which an invocation is marked past due


class InvalidSchedule(ValueError):
    """A timer function's schedule is not an NCRONTAB expression this runtime runs."""


def next_fire(schedule: str, after: datetime) -> datetime:
    """The first occurrence of the NCRONTAB ``schedule`` strictly after ``after``
    (an aware datetime; the answer is in UTC)."""
    return _cron(schedule, after).get_next(datetime)


def _cron(schedule: str, start: datetime) -> croniter:
    fields = schedule.split()
    if len(fields) != 6:
        raise InvalidSchedule(
            f"{schedule!r} has {len(fields)} fields; an NCRONTAB expression has six: "
            "{second} {minute} {hour} {day} {month} {day-of-week}"
        )
    try:
        return croniter(
            schedule,
            start.astimezone(UTC),
            second_at_beginning=True,
            day_or=False,
        )
    except CroniterError as exc:
        message = f"{schedule!r} is not a valid NCRONTAB expression: {exc}"
        raise InvalidSchedule(message) from None


@dataclass(frozen=True)
class TimerFunction:
    name: str
    schedule: str
    arg_name: str
    run_on_startup: bool
    call: Callable[..., object]

    def invoke(self, past_due: bool) -> None:
        self.call(**{self.arg_name: TimerRequest(past_due=past_due)})


def timer_functions(app: func.FunctionRegister) -> list[TimerFunction]:
    """The timer functions ``app`` declares; InvalidSchedule names the first one whose
    schedule cannot run.

    ``get_functions()`` refuses a second call on the same app (it remembers the names it
    validated), so its memo is cleared for this call and put back."""
    memo = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = memo
    found = []
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None or trigger.type != TIMER_TRIGGER:
            continue
        name = str(function.get_function_name())
        schedule = str(getattr(trigger, "schedule", ""))
        try:
            next_fire(schedule, datetime.now(UTC))
        except InvalidSchedule as exc:
            raise InvalidSchedule(f"timer function {name}: {exc}") from None
        found.append(
            TimerFunction(
                name=name,
                schedule=schedule,
                arg_name=str(trigger.name),
                run_on_startup=bool(getattr(trigger, "run_on_startup", False)),
                call=function.get_user_function(),
            )
        )
    return found


class LocalScheduler:
    """Runs timer functions on their schedules until ``stop``."""

    def __init__(
        self,
        functions: Iterable[TimerFunction],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_wait: float = 60.0,
    ) -> None:
        """``max_wait``: the longest sleep between looks at the clock, so a change of
        the system clock (or a machine's sleep) delays an occurrence by at most that."""
        self.functions = list(functions)
        self._clock = clock
        self._max_wait = max_wait
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for function in self.functions:
            thread = threading.Thread(
                target=self._loop, args=(function,), name=f"timer-{function.name}"
            )
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        if self.functions:
            log.info(
                "timers: %s",
                ", ".join(f"{f.name} ({f.schedule})" for f in self.functions),
            )

    def stop(self, timeout: float | None = None) -> None:
        """No new invocation starts; waits up to ``timeout`` for running ones."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _loop(self, function: TimerFunction) -> None:
        if function.run_on_startup:
            self._invoke(function, past_due=False)
        due = next_fire(function.schedule, self._clock())
        while not self._stopping.is_set():
            now = self._clock()
            wait = (due - now).total_seconds()
            if wait > 0:
                self._stopping.wait(min(wait, self._max_wait))
                continue
            self._invoke(function, past_due=-wait > PAST_DUE_AFTER)
            # late (the last run overran, the machine slept): what was missed runs once
            due = next_fire(function.schedule, max(due, now))

    def _invoke(self, function: TimerFunction, past_due: bool) -> None:
        try:
            function.invoke(past_due)
        except Exception as exc:  # the function logged it; the schedule goes on
            log.warning("timer %s failed: %s", function.name, exc)
