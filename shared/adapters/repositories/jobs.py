"""Jobs of every kind, with a training job's detail row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import Job, TrainingJob
from shared.ports import Page

FINISHED = ("COMPLETED", "FAILED", "CANCELLED")


class SqlJobRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, job: Job) -> None:
        self.s.add(job)

    def get(self, job_id: uuid.UUID) -> Job | None:
        return self.s.get(Job, job_id)

    def get_training(self, job_id: uuid.UUID) -> TrainingJob | None:
        return self.s.get(TrainingJob, job_id)

    def status(self, job_id: uuid.UUID) -> str | None:
        return self.s.scalar(select(Job.status).where(Job.id == job_id))

    def page(
        self, page: int, page_size: int, kind: str | None, status: str | None
    ) -> Page[Job]:
        entity = TrainingJob if kind == "training" else Job
        query = select(entity).order_by(Job.created_at.desc(), Job.id)
        if kind:
            query = query.where(Job.kind == kind)
        if status:
            query = query.where(Job.status == status)
        return paginate(self.s, query, page, page_size)

    def unfinished(self) -> list[Job]:
        return list(self.s.scalars(select(Job).where(Job.status.not_in(FINISHED))))

    def unfinished_training_on(
        self, feature_set_ids: Sequence[uuid.UUID]
    ) -> list[TrainingJob]:
        return list(
            self.s.scalars(
                select(TrainingJob).where(
                    TrainingJob.feature_set_id.in_(feature_set_ids),
                    TrainingJob.status.not_in(FINISHED),
                )
            )
        )

    def delete_training_of(
        self, model_ids: Sequence[uuid.UUID], feature_set_ids: Sequence[uuid.UUID]
    ) -> None:
        if not (model_ids or feature_set_ids):
            return
        training = select(TrainingJob.id).where(
            or_(
                TrainingJob.model_id.in_(model_ids),
                TrainingJob.feature_set_id.in_(feature_set_ids),
            )
        )
        job_ids = list(self.s.scalars(training))
        if job_ids:
            # the detail rows first: a bulk delete of a subclass leaves ``jobs`` behind
            self.s.execute(delete(TrainingJob).where(TrainingJob.id.in_(job_ids)))
            self.s.execute(delete(Job).where(Job.id.in_(job_ids)))
