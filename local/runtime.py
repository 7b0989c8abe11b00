"""The embedded runtime around the HTTP app: the local Durable engine (history in the
app database) as the job launcher, resumed after a restart."""

from __future__ import annotations

import logging

from sqlalchemy import select

from shared.bootstrap import AppContext
from shared.db.models import Job
from shared.jobs.launcher import LocalEngineLauncher
from shared.jobs.service import CANCELLING, FINISHED, JobService

log = logging.getLogger("shadow_hubble.local")


class LocalRuntime:
    def __init__(self, ctx: AppContext, poll_interval: float = 1.0) -> None:
        from function_app import app
        from local.durable import LocalDurableEngine
        from local.durable.sql_store import SqlHistoryStore

        self.ctx = ctx
        self.engine = LocalDurableEngine(
            app,
            SqlHistoryStore(ctx.db),
            max_workers=ctx.settings.job_workers,
            poll_interval=poll_interval,
        )
        ctx.launcher = LocalEngineLauncher(self.engine)

    def start(self) -> list[str]:
        """Resume every unfinished orchestration; end jobs that cannot resume FAILED."""
        resumed = self.engine.resume_unfinished()
        self._reconcile_jobs(set(resumed))
        if resumed:
            log.info(
                "resumed %d unfinished job(s): %s", len(resumed), ", ".join(resumed)
            )
        return resumed

    def _reconcile_jobs(self, resumed: set[str]) -> None:
        jobs = JobService(self.ctx)
        with self.ctx.db.session() as s:
            open_jobs = s.execute(
                select(Job.id, Job.status).where(Job.status.not_in(FINISHED))
            ).all()
        for job_id, status in open_jobs:
            if str(job_id) in resumed:
                continue
            if status == CANCELLING:
                jobs.fail(job_id, "cancelled")
            else:
                jobs.fail(
                    job_id,
                    "The local runtime stopped before this job finished and its "
                    "orchestration could not be resumed; start the job again.",
                )

    def stop(self) -> None:
        self.engine.shutdown(wait=False)
