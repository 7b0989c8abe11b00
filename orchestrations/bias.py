"""Bias audit's orchestrator and activity: one idempotent activity (a re-run finds the
audit it stored), run by the generic single-activity orchestrator."""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from orchestrations.jobs import SingleActivityJob, single_activity_orchestrator

bp = df.Blueprint()

BIAS_AUDIT_JOB = SingleActivityJob("bias_orchestrator", "bias_audit", "auditing", 2)

bp.orchestration_trigger(context_name="context")(
    single_activity_orchestrator(BIAS_AUDIT_JOB)
)


@bp.activity_trigger(input_name="job")
def bias_audit(job: dict[str, Any]) -> dict[str, Any]:
    from shared.container import container

    return container().bias_audits.run_job(job["job_id"])
