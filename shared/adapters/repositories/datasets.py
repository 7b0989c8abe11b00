"""Datasets and their versions."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import Dataset, DatasetVersion
from shared.ports import Page

DELETING = "DELETING"


class SqlDatasetRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, dataset_id: uuid.UUID) -> Dataset | None:
        return self.s.get(Dataset, dataset_id)

    def get_for_update(self, dataset_id: uuid.UUID) -> Dataset | None:
        return self.s.scalar(
            select(Dataset).where(Dataset.id == dataset_id).with_for_update()
        )

    def id_named(self, name: str) -> uuid.UUID | None:
        return self.s.scalar(select(Dataset.id).where(Dataset.name == name))

    def add(self, dataset: Dataset) -> None:
        self.s.add(dataset)

    def add_version(self, version: DatasetVersion) -> None:
        self.s.add(version)
        self.s.flush()

    def versions(self, dataset_id: uuid.UUID) -> list[DatasetVersion]:
        return list(
            self.s.scalars(
                select(DatasetVersion)
                .where(DatasetVersion.dataset_id == dataset_id)
                .order_by(DatasetVersion.created_at)
            )
        )

    def version_count(self, dataset_id: uuid.UUID) -> int:
        count = self.s.scalar(
            select(func.count()).where(DatasetVersion.dataset_id == dataset_id)
        )
        return int(count or 0)

    def version(self, dataset_id: uuid.UUID, version: str) -> DatasetVersion | None:
        return self.s.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_id == dataset_id,
                DatasetVersion.version == version,
            )
        )

    def page(
        self, page: int, page_size: int, name_contains: str | None
    ) -> Page[Dataset]:
        query = select(Dataset).where(Dataset.status != DELETING)
        if name_contains:
            query = query.where(Dataset.name.icontains(name_contains, autoescape=True))
        query = query.order_by(Dataset.created_at.desc(), Dataset.id)
        return paginate(self.s, query, page, page_size)

    def delete(self, dataset: Dataset) -> None:
        self.s.execute(
            delete(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
        )
        self.s.delete(dataset)
