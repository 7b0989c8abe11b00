"""The one job state machine, for every kind of job, on both databases and on an
in-memory repository: PENDING, RUNNING, then COMPLETED, FAILED or CANCELLED."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import TrainingJob
from shared.db.session import Database
from shared.errors import Conflict, NotFound
from shared.services.jobs import JobCancelled, JobService
from tests.services.fakes import MemoryTransactions


class RecordingLauncher:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        return None

    def cancel(self, job_id: str, reason: str) -> None:
        self.cancelled.append(job_id)


@pytest.fixture
def launcher() -> RecordingLauncher:
    return RecordingLauncher()


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def jobs(request: pytest.FixtureRequest, launcher: RecordingLauncher) -> JobService:
    if request.param == "memory":
        return JobService(MemoryTransactions(), launcher=lambda: launcher)
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    db: Database = request.getfixturevalue(fixture)
    return JobService(SqlTransactions(db), launcher=lambda: launcher)


def test_a_job_runs_to_completion(jobs: JobService) -> None:
    job = jobs.create("features", {"dataset_id": "d1"})
    assert jobs.get(job.id)["status"] == "PENDING"
    assert jobs.start(job.id, "loading") == {"dataset_id": "d1"}
    jobs.progress(job.id, 0.5, "halfway")
    running = jobs.get(job.id)
    assert (running["status"], running["progress"]) == ("RUNNING", 0.5)
    jobs.complete(job.id, {"rows": 3})
    jobs.fail(job.id, "too late")  # a finished job stays as it ended
    done = jobs.get(job.id)
    assert (done["status"], done["result"], done["error_message"]) == (
        "COMPLETED",
        {"rows": 3},
        None,
    )


def test_a_failure_records_the_reason(jobs: JobService) -> None:
    job = jobs.create("features", {})
    jobs.start(job.id)
    jobs.fail(job.id, "the dataset is gone")
    failed = jobs.get(job.id)
    assert (failed["status"], failed["error_message"]) == (
        "FAILED",
        "the dataset is gone",
    )


def test_cancel_before_start_ends_the_job_and_stops_its_activity(
    jobs: JobService, launcher: RecordingLauncher
) -> None:
    job = jobs.create("features", {})
    assert jobs.request_cancel(job.id)["status"] == "CANCELLED"
    assert launcher.cancelled == [str(job.id)]
    with pytest.raises(JobCancelled):
        jobs.start(job.id)
    with pytest.raises(Conflict):
        jobs.cancel(job.id)


def test_cancel_while_running_winds_the_job_down(jobs: JobService) -> None:
    job = jobs.create("features", {})
    jobs.start(job.id)
    jobs.cancel(job.id)
    assert jobs.get(job.id)["status"] == "CANCELLING"
    assert jobs.is_stopping(job.id)
    with pytest.raises(JobCancelled):
        jobs.progress(job.id, 0.7, "more")
    assert jobs.get(job.id)["status"] == "CANCELLED"


def test_fail_during_a_cancel_ends_cancelled(jobs: JobService) -> None:
    job = jobs.create("features", {})
    jobs.start(job.id)
    jobs.cancel(job.id)
    jobs.fail(job.id, "interrupted")
    assert jobs.get(job.id)["status"] == "CANCELLED"


def test_a_training_job_is_a_job_with_its_detail(jobs: JobService) -> None:
    job_id = uuid.uuid4()
    jobs.create(
        "training",
        {"job_id": str(job_id)},
        job_id,
        row=TrainingJob(name="fraud", algorithm="xgboost", config={"seed": 1}),
    )
    assert jobs.get(job_id)["kind"] == "training"
    detail = jobs.get_row(job_id, "training")
    assert isinstance(detail, TrainingJob)
    assert (detail.name, detail.status) == ("fraud", "PENDING")
    assert jobs.record(job_id, metrics={"live": {"iteration": 3}}) == "PENDING"
    recorded = jobs.get_row(job_id, "training")
    assert isinstance(recorded, TrainingJob)
    assert recorded.metrics == {"live": {"iteration": 3}}
    other = jobs.create("features", {})
    with pytest.raises(NotFound):
        jobs.get_row(other.id, "training")
    page = jobs.list_jobs(1, 10, "training")
    assert [j["job_id"] for j in page.items] == [str(job_id)]
