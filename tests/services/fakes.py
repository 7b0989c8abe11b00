"""In-memory ports for service tests: a unit of work whose job repository keeps rows
in a dict. It does not roll back: only for services that raise before they write."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.db.models import Job, TrainingJob
from shared.ports import Page


class MemoryJobs:
    def __init__(self, rows: dict[uuid.UUID, Job]) -> None:
        self.rows = rows

    def add(self, job: Job) -> None:
        self.rows[job.id] = job

    def get(self, job_id: uuid.UUID) -> Job | None:
        return self.rows.get(job_id)

    def get_training(self, job_id: uuid.UUID) -> TrainingJob | None:
        job = self.rows.get(job_id)
        return job if isinstance(job, TrainingJob) else None

    def status(self, job_id: uuid.UUID) -> str | None:
        job = self.rows.get(job_id)
        return None if job is None else job.status

    def page(
        self, page: int, page_size: int, kind: str | None, status: str | None
    ) -> Page[Job]:
        found = [
            j
            for j in reversed(self.rows.values())
            if (kind is None or j.kind == kind)
            and (status is None or j.status == status)
        ]
        start = (page - 1) * page_size
        return Page(found[start : start + page_size], page, page_size, len(found))

    def unfinished(self) -> list[Job]:
        raise NotImplementedError

    def unfinished_training_on(self, feature_set_ids: Any) -> list[TrainingJob]:
        raise NotImplementedError

    def delete_training_of(self, model_ids: Any, feature_set_ids: Any) -> None:
        raise NotImplementedError


class MemoryUnitOfWork:
    def __init__(self, rows: dict[uuid.UUID, Job]) -> None:
        self.jobs = MemoryJobs(rows)

    def flush(self) -> None:
        return None


class MemoryTransactions:
    """``Transactions`` over a dict of jobs."""

    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, Job] = {}

    @contextmanager
    def __call__(self, write: bool = False) -> Iterator[Any]:
        yield MemoryUnitOfWork(self.rows)
