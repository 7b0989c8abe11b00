"""Backtest's activity: the model scores a dataset's window into a Parquet of scores,
idempotent, run by the generic single-activity orchestrator (orchestrations/jobs.py)."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

bp = df.Blueprint()


@bp.activity_trigger(input_name="job")
def backtest_score(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().backtests.run_job(job["job_id"])
