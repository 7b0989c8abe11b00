"""The timer functions and the blueprint that declares their schedules.

Each schedule is an NCRONTAB expression (six fields, seconds first, UTC) from the
settings, written into the function's binding when the app is indexed: the Functions
host and the local scheduler read the same expression from the same metadata.

Failure policy: a function calls one service and logs what it did. An error is logged
with the function's name and raised again, so the host records a failed invocation
(visible and alertable in Application Insights); a failed invocation does not stop the
schedule, the next occurrence runs as usual (the local scheduler does the same).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import azure.functions as func

from shared.config import Settings
from shared.container import container

log = logging.getLogger("shadow_hubble.timers")

TIMER_ARG = "timer"


def _run(name: str, timer: func.TimerRequest, call: Callable[[], int]) -> None:
    started = time.perf_counter()
    try:
        done = call()
    except Exception:
        log.exception(
            "timer %s failed (past_due=%s); its next occurrence runs as scheduled",
            name,
            timer.past_due,
        )
        raise
    log.info(
        "timer %s: %d done in %.2f s (past_due=%s)",
        name,
        done,
        time.perf_counter() - started,
        timer.past_due,
    )


def drift_audit_24h(timer: func.TimerRequest) -> None:
    """The drift audit of every production model over the last 24 hours."""
    _run(
        "drift_audit_24h",
        timer,
        lambda: container().drift_audits.run_scheduled("24h"),
    )


def drift_audit_7d(timer: func.TimerRequest) -> None:
    """The drift audit of every production model over the last 7 days."""
    _run("drift_audit_7d", timer, lambda: container().drift_audits.run_scheduled("7d"))


def bias_audit_24h(timer: func.TimerRequest) -> None:
    """The bias audit of every production model's labelled predictions of the last
    24 hours."""
    _run(
        "bias_audit_24h",
        timer,
        lambda: container().bias_audits.run_scheduled("24h"),
    )


def feature_log_export(timer: func.TimerRequest) -> None:
    """The feature log's export of what was logged since the last one."""
    _run("feature_log_export", timer, lambda: container().feature_log.export())


def operational_alerts(timer: func.TimerRequest) -> None:
    """The alert rules on latency and prediction volume of the last window, and the
    retry of alerts the bus has not accepted yet."""
    _run(
        "operational_alerts",
        timer,
        lambda: container().alert_engine.run_operational(
            container().settings.operational_alerts_window_minutes
        ),
    )


def blueprint(settings: Settings) -> func.Blueprint:
    """The timer functions on the schedules ``settings`` give."""
    # azure-functions leaves Blueprint's constructor unannotated
    bp = func.Blueprint()  # type: ignore[no-untyped-call]
    schedules: list[tuple[Callable[[func.TimerRequest], None], str]] = [
        (drift_audit_24h, settings.drift_schedule_24h),
        (drift_audit_7d, settings.drift_schedule_7d),
        (feature_log_export, settings.feature_log_export_schedule),
        (bias_audit_24h, settings.bias_audit_schedule),
        (operational_alerts, settings.operational_alerts_schedule),
    ]
    for function, schedule in schedules:
        bp.timer_trigger(
            schedule=schedule,
            arg_name=TIMER_ARG,
            run_on_startup=False,
            use_monitor=True,
        )(function)
    return bp
