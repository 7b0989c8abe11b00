"""Registered models with their baselines, transitions, metrics and alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import (
    Alert,
    AlertRule,
    Baseline,
    BiasMetric,
    DriftAudit,
    DriftMetric,
    MLModel,
    ModelTransition,
    Prediction,
)
from shared.ports import Page

PRODUCTION = "PRODUCTION"


class SqlModelRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def get(self, model_id: uuid.UUID) -> MLModel | None:
        return self.s.get(MLModel, model_id)

    def get_for_update(self, model_id: uuid.UUID) -> MLModel | None:
        return self.s.scalar(
            select(MLModel).where(MLModel.id == model_id).with_for_update()
        )

    def add(self, model: MLModel) -> None:
        self.s.add(model)

    def versions(self, name: str) -> list[str]:
        return list(self.s.scalars(select(MLModel.version).where(MLModel.name == name)))

    def production_id(self, name: str | None = None) -> uuid.UUID | None:
        query = select(MLModel.id).where(MLModel.status == PRODUCTION)
        if name:
            query = query.where(MLModel.name == name)
        return self.s.scalar(query.order_by(MLModel.promoted_at.desc()).limit(1))

    def previous_production(self, model: MLModel) -> MLModel | None:
        return self.s.scalar(
            select(MLModel)
            .join(ModelTransition, ModelTransition.model_id == MLModel.id)
            .where(
                MLModel.name == model.name,
                MLModel.id != model.id,
                ModelTransition.from_status == PRODUCTION,
            )
            .order_by(ModelTransition.created_at.desc())
            .limit(1)
        )

    def page(
        self, page: int, page_size: int, name: str | None, status: str | None
    ) -> Page[MLModel]:
        query = select(MLModel).order_by(MLModel.created_at.desc(), MLModel.id)
        if name:
            query = query.where(MLModel.name == name)
        if status:
            query = query.where(MLModel.status == status)
        return paginate(self.s, query, page, page_size)

    def trained_on(self, feature_set_ids: Sequence[uuid.UUID]) -> list[MLModel]:
        if not feature_set_ids:
            return []
        return list(
            self.s.scalars(
                select(MLModel)
                .where(MLModel.feature_set_id.in_(feature_set_ids))
                .order_by(MLModel.created_at, MLModel.id)
            )
        )

    def has_predictions(self, model_id: uuid.UUID) -> bool:
        # one indexed probe (predictions by model and date): no count over a
        # partitioned log of millions of rows
        found = self.s.scalar(
            select(Prediction.id).where(Prediction.model_id == model_id).limit(1)
        )
        return found is not None

    def active_baselines(self, model_id: uuid.UUID) -> list[Baseline]:
        return list(
            self.s.scalars(
                select(Baseline).where(
                    Baseline.model_id == model_id, Baseline.is_active
                )
            )
        )

    def add_baselines(self, baselines: Sequence[Baseline]) -> None:
        self.s.add_all(baselines)

    def add_transition(self, transition: ModelTransition) -> None:
        self.s.add(transition)

    def transitions_of_name(self, name: str) -> list[ModelTransition]:
        return list(
            self.s.scalars(
                select(ModelTransition)
                .join(MLModel, MLModel.id == ModelTransition.model_id)
                .where(MLModel.name == name)
                .order_by(ModelTransition.created_at, ModelTransition.id)
            )
        )

    def delete(self, model_ids: Sequence[uuid.UUID]) -> None:
        """Children first (explicit, not left to ON DELETE)."""
        if not model_ids:
            return
        rules = select(AlertRule.id).where(AlertRule.model_id.in_(model_ids))
        self.s.execute(
            delete(Alert).where(
                or_(Alert.model_id.in_(model_ids), Alert.rule_id.in_(rules))
            )
        )
        for table in (
            AlertRule,
            DriftMetric,
            DriftAudit,
            BiasMetric,
            Baseline,
            ModelTransition,
        ):
            self.s.execute(delete(table).where(table.model_id.in_(model_ids)))
        self.s.execute(delete(MLModel).where(MLModel.id.in_(model_ids)))
