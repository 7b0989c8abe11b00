"""The embedded runtime around the HTTP app: the local Durable engine (history in the
app database) as the job launcher, resumed after a restart, and (``timers``) the app's
timer functions on their schedules (``local/scheduler.py``); the in-process alert bus
delivers to the app's Service Bus consumers (``local/alert_bus.py``)."""

from __future__ import annotations

import logging

from sqlalchemy import select

from local.alert_bus import attach_consumers
from shared.adapters.bus.in_process import InProcessAlertBus
from shared.adapters.launcher import LocalEngineLauncher
from shared.container import Container
from shared.db.models import Job
from shared.services.jobs import FINISHED

log = logging.getLogger("shadow_hubble.local")


class LocalRuntime:
    def __init__(
        self, ctx: Container, poll_interval: float = 1.0, *, timers: bool = False
    ) -> None:
        """``timers``: also run the timer functions; an invalid schedule raises
        ``InvalidSchedule`` here, before anything starts."""
        from function_app import app
        from local.durable import LocalDurableEngine
        from local.durable.sql_store import SqlHistoryStore
        from local.scheduler import LocalScheduler, timer_functions

        self.ctx = ctx
        self.engine = LocalDurableEngine(
            app,
            SqlHistoryStore(ctx.db),
            max_workers=ctx.settings.job_workers,
            poll_interval=poll_interval,
        )
        ctx.launcher = LocalEngineLauncher(self.engine)
        if isinstance(ctx.bus, InProcessAlertBus):
            attach_consumers(app, ctx.bus, ctx.settings.alerts_topic)
        self.scheduler = LocalScheduler(timer_functions(app) if timers else [])

    def start(self) -> list[str]:
        """Resume every unfinished orchestration; end jobs that cannot resume FAILED."""
        resumed = self.engine.resume_unfinished()
        self._reconcile_jobs(set(resumed))
        self.scheduler.start()
        if resumed:
            log.info(
                "resumed %d unfinished job(s): %s", len(resumed), ", ".join(resumed)
            )
        return resumed

    def _reconcile_jobs(self, resumed: set[str]) -> None:
        """Jobs of every kind left open with no orchestration to carry them on end
        FAILED with the reason (a cancel in flight ends CANCELLED)."""
        reason = (
            "The local runtime stopped before this job finished and its "
            "orchestration could not be resumed; start the job again."
        )
        with self.ctx.db.session() as s:
            jobs = s.scalars(select(Job.id).where(Job.status.not_in(FINISHED))).all()
        for job_id in jobs:
            if str(job_id) not in resumed:
                self.ctx.jobs.fail(job_id, reason)

    def stop(self) -> None:
        self.scheduler.stop(timeout=30)
        self.engine.shutdown(wait=False)
