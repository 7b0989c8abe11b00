"""The local runtime's timers: NCRONTAB next occurrences, schedules read from the app's
own function index, and runs of the real timer functions on a fast schedule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions.timers import blueprint
from local.scheduler import (
    InvalidSchedule,
    LocalScheduler,
    TimerFunction,
    next_fire,
    timer_functions,
)
from shared.adapters.blobs.factory import make_blob_store
from shared.container import Container, use
from shared.db.session import Database
from tests.conftest import make_settings

T0 = datetime(2026, 12, 4, 17, 30, 0, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 5 * * * *", T0, datetime(2026, 12, 4, 18, 5, tzinfo=UTC)),
        ("0 5 * * * *", T0.replace(minute=4, second=59), T0.replace(minute=5)),
        # strictly after: an occurrence at ``after`` is not the next one
        ("0 30 17 * * *", T0, datetime(2026, 12, 5, 17, 30, tzinfo=UTC)),
        ("*/15 * * * * *", T0.replace(second=7), T0.replace(second=15)),
        ("10,20 * * * * *", T0.replace(second=10), T0.replace(second=20)),
        ("5-7 * * * * *", T0.replace(second=6), T0.replace(second=7)),
        ("0 15 2 * * *", T0, datetime(2026, 12, 5, 2, 15, tzinfo=UTC)),
        # hours 9-17 on weekdays: Friday 17:30 is past, so Monday 09:00
        ("0 0 9-17 * * 1-5", T0, datetime(2026, 12, 7, 9, 0, tzinfo=UTC)),
        ("0 30 9 * Jan Mon", T0, datetime(2027, 1, 4, 9, 30, tzinfo=UTC)),
        # day of month AND day of week, as NCRONTAB reads them: the next Friday 13th
        ("0 0 0 13 * 5", T0, datetime(2027, 8, 13, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_fire_reads_ncrontab_with_seconds_first(
    schedule: str, after: datetime, expected: datetime
) -> None:
    assert next_fire(schedule, after) == expected


def test_next_fire_answers_in_utc_for_any_aware_time() -> None:
    from zoneinfo import ZoneInfo

    paris = T0.astimezone(ZoneInfo("Europe/Paris"))
    assert next_fire("0 0 * * * *", paris) == datetime(2026, 12, 4, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("5 * * * *", "has 5 fields"),
        ("0 0 0 32 * *", "not a valid NCRONTAB expression"),
        ("0 61 * * * *", "not a valid NCRONTAB expression"),
        ("every hour please x y z", "not a valid NCRONTAB expression"),
    ],
)
def test_an_invalid_schedule_is_refused_at_start_naming_the_function(
    tmp_path: Path, schedule: str, message: str
) -> None:
    with pytest.raises(InvalidSchedule, match=message):
        next_fire(schedule, T0)
    app = _app(make_settings(tmp_path, drift_schedule_7d=schedule))
    with pytest.raises(
        InvalidSchedule, match=f"timer function drift_audit_7d: .*{message}"
    ):
        timer_functions(app)


def test_the_schedules_come_from_the_app_index(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        drift_schedule_24h="0 1 * * * *",
        drift_schedule_7d="0 2 3 * * *",
        feature_log_export_schedule="30 */2 * * * *",
        bias_audit_schedule="0 4 5 * * *",
        operational_alerts_schedule="45 */3 * * * *",
    )
    app = _app(settings)
    found = {f.name: f for f in timer_functions(app)}
    assert {n: f.schedule for n, f in found.items()} == {
        "drift_audit_24h": "0 1 * * * *",
        "drift_audit_7d": "0 2 3 * * *",
        "feature_log_export": "30 */2 * * * *",
        "bias_audit_24h": "0 4 5 * * *",
        "operational_alerts": "45 */3 * * * *",
    }
    assert all(f.arg_name == "timer" and not f.run_on_startup for f in found.values())
    # the index can still be read again (by the host or another runtime)
    assert len(timer_functions(app)) == 5


class _Recorder:
    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def _record(self, what: str) -> int:
        with self.lock:
            self.calls.append(what)
            if self.fail_first and len(self.calls) == 1:
                raise RuntimeError("the database is away")
        return 1

    def run_scheduled(self, window: str) -> int:
        return self._record(f"drift {window}")

    def export(self) -> int:
        return self._record("export")


class _BiasRecorder(_Recorder):
    def run_scheduled(self, window: str) -> int:
        return self._record(f"bias {window}")


@pytest.fixture
def fakes(sqlite_db: Database, tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path)
    ctx = Container(settings=settings, db=sqlite_db, blobs=make_blob_store(settings))
    ctx.drift_audits = _Recorder()  # type: ignore[misc]
    ctx.feature_log = _Recorder(fail_first=True)  # type: ignore[misc]
    ctx.bias_audits = _BiasRecorder()  # type: ignore[misc]
    use(ctx)
    yield ctx
    use(None)


def _poll(until: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the timers did not fire"
        time.sleep(0.05)


def test_the_local_scheduler_runs_the_timer_functions(
    fakes: Any, tmp_path: Path
) -> None:
    every_second = "*/1 * * * * *"
    settings = make_settings(
        tmp_path,
        drift_schedule_24h=every_second,
        drift_schedule_7d=every_second,
        feature_log_export_schedule=every_second,
        bias_audit_schedule=every_second,
    )
    scheduler = LocalScheduler(timer_functions(_app(settings)))
    scheduler.start()
    try:
        _poll(
            lambda: (
                {"drift 24h", "drift 7d"} <= set(fakes.drift_audits.calls)
                and "bias 24h" in fakes.bias_audits.calls
                # the export's first run failed: its schedule went on
                and fakes.feature_log.calls.count("export") >= 2
            )
        )
    finally:
        scheduler.stop(timeout=10)
    assert not any(t.name.startswith("timer-") for t in threading.enumerate())


def test_an_invocation_that_overran_its_next_occurrence_is_followed_past_due() -> None:
    seen: list[bool] = []
    clock = [T0.replace(second=59)]

    def timer(timer: func.TimerRequest) -> None:
        seen.append(timer.past_due)
        if len(seen) == 1:
            clock[0] = T0.replace(minute=33, second=30)  # ran past 17:32 and 17:33

    function = TimerFunction("t", "0 * * * * *", "timer", False, timer)
    scheduler = LocalScheduler([function], clock=lambda: clock[0], max_wait=0.02)
    scheduler.start()
    try:
        time.sleep(0.1)
        assert seen == []  # 17:31:00 is not due yet
        clock[0] = T0.replace(minute=31)
        _poll(lambda: len(seen) >= 2)
        time.sleep(0.1)
        assert seen == [False, True]  # once past due, not once per missed occurrence
        clock[0] = T0.replace(minute=34)
        _poll(lambda: len(seen) >= 3)
    finally:
        scheduler.stop(timeout=10)
    assert seen == [False, True, False]


def test_the_runtime_runs_the_apps_timers_only_when_asked(fakes: Container) -> None:
    from local.runtime import LocalRuntime

    quiet = LocalRuntime(fakes, poll_interval=0.2)
    assert quiet.scheduler.functions == []
    quiet.stop()
    runtime = LocalRuntime(fakes, poll_interval=0.2, timers=True)
    runtime.start()
    try:
        names = {f.name for f in runtime.scheduler.functions}
        assert names == {
            "drift_audit_24h",
            "drift_audit_7d",
            "feature_log_export",
            "bias_audit_24h",
            "operational_alerts",
        }
    finally:
        runtime.stop()
    assert not any(t.name.startswith("timer-") for t in threading.enumerate())


def _app(settings: Any) -> func.FunctionApp:
    app = func.FunctionApp()
    app.register_functions(blueprint(settings))
    return app
