"""Feature sets."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import FeatureSet
from shared.ports import Page


class SqlFeatureSetRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, feature_set_id: uuid.UUID) -> FeatureSet | None:
        return self.s.get(FeatureSet, feature_set_id)

    def add(self, feature_set: FeatureSet) -> None:
        self.s.add(feature_set)

    def page(
        self, page: int, page_size: int, dataset_id: uuid.UUID | None
    ) -> Page[FeatureSet]:
        query = select(FeatureSet).order_by(FeatureSet.created_at.desc(), FeatureSet.id)
        if dataset_id is not None:
            query = query.where(FeatureSet.dataset_id == dataset_id)
        return paginate(self.s, query, page, page_size)

    def of_dataset(self, dataset_id: uuid.UUID) -> list[FeatureSet]:
        return list(
            self.s.scalars(
                select(FeatureSet)
                .where(FeatureSet.dataset_id == dataset_id)
                .order_by(FeatureSet.created_at, FeatureSet.id)
            )
        )

    def any_of_dataset(self, dataset_id: uuid.UUID) -> bool:
        found = self.s.scalar(
            select(FeatureSet.id).where(FeatureSet.dataset_id == dataset_id).limit(1)
        )
        return found is not None

    def configs(self) -> list[dict[str, Any]]:
        return [
            dict(c or {}) for c in self.s.scalars(select(FeatureSet.feature_config))
        ]

    def delete(self, feature_set_ids: Sequence[uuid.UUID]) -> None:
        if feature_set_ids:
            self.s.execute(delete(FeatureSet).where(FeatureSet.id.in_(feature_set_ids)))
