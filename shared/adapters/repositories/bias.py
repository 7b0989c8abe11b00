"""Bias audits with their bias_metrics rows, and the labelled predictions of a window
with the protected values logged beside them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import BiasAudit, BiasMetric, MLModel, Prediction
from shared.ports import LabelledPredictions

NO_DATA = "NO_DATA"


class SqlBiasRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add_audit(self, audit: BiasAudit, metrics: Sequence[BiasMetric]) -> None:
        self.s.add(audit)
        self.s.flush()  # the metrics' foreign key names the audit
        self.s.add_all(metrics)

    def get_audit(self, audit_id: uuid.UUID) -> BiasAudit | None:
        return self.s.get(BiasAudit, audit_id)

    def latest_audit(
        self,
        model_id: uuid.UUID,
        source: str | None = None,
        with_data: bool = False,
    ) -> BiasAudit | None:
        query = select(BiasAudit).where(BiasAudit.model_id == model_id)
        if source is not None:
            query = query.where(BiasAudit.source == source)
        if with_data:
            query = query.where(BiasAudit.status != NO_DATA)
        return self.s.scalar(
            query.order_by(BiasAudit.computed_at.desc(), BiasAudit.id).limit(1)
        )

    def metrics(self, audit_id: uuid.UUID) -> list[BiasMetric]:
        return list(
            self.s.scalars(
                select(BiasMetric)
                .where(BiasMetric.audit_id == audit_id)
                .order_by(BiasMetric.protected_attribute, BiasMetric.metric_name)
            )
        )

    def labelled_predictions(
        self, model_id: uuid.UUID, start: datetime, end: datetime
    ) -> LabelledPredictions:
        query = (
            select(
                Prediction.is_fraud,
                Prediction.actual_label,
                Prediction.protected_values,
            )
            .where(
                Prediction.model_id == model_id,
                Prediction.created_at >= start,
                Prediction.created_at < end,
                Prediction.actual_label.is_not(None),
            )
            .order_by(Prediction.created_at, Prediction.id)
        )
        decisions: list[bool] = []
        labels: list[bool] = []
        protected: list[dict[str, Any] | None] = []
        for is_fraud, label, values in self.s.execute(query):
            decisions.append(bool(is_fraud))
            labels.append(bool(label))
            protected.append(values if isinstance(values, dict) else None)
        return LabelledPredictions(decisions, labels, protected)

    def production_model_ids(self) -> list[uuid.UUID]:
        return list(
            self.s.scalars(
                select(MLModel.id)
                .where(MLModel.status == "PRODUCTION")
                .order_by(MLModel.name)
            )
        )
