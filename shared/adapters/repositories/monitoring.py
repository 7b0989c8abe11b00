"""Drift audits with their drift_metrics rows, and alerts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import Alert, DriftAudit, DriftMetric, MLModel
from shared.ports import Page

NO_DATA = "NO_DATA"


class SqlDriftRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add_audit(self, audit: DriftAudit, metrics: Sequence[DriftMetric]) -> None:
        self.s.add(audit)
        self.s.add_all(metrics)

    def get_audit(self, audit_id: uuid.UUID) -> DriftAudit | None:
        return self.s.get(DriftAudit, audit_id)

    def latest_audit(
        self, model_id: uuid.UUID, window: str, with_data: bool = False
    ) -> DriftAudit | None:
        query = select(DriftAudit).where(
            DriftAudit.model_id == model_id, DriftAudit.window == window
        )
        if with_data:
            query = query.where(DriftAudit.status != NO_DATA)
        return self.s.scalar(
            query.order_by(DriftAudit.computed_at.desc(), DriftAudit.id).limit(1)
        )

    def history(
        self, model_id: uuid.UUID, window: str, feature: str | None, audits: int
    ) -> list[tuple[DriftAudit, DriftMetric]]:
        latest = (
            select(DriftAudit.id)
            .where(DriftAudit.model_id == model_id, DriftAudit.window == window)
            .order_by(DriftAudit.computed_at.desc())
            .limit(audits)
        )
        query = (
            select(DriftAudit, DriftMetric)
            .join(
                DriftMetric,
                and_(
                    DriftMetric.model_id == DriftAudit.model_id,
                    DriftMetric.computed_at == DriftAudit.computed_at,
                ),
            )
            .where(DriftAudit.id.in_(latest), DriftMetric.drift_type == "FEATURE")
            .order_by(DriftAudit.computed_at, DriftMetric.feature_name)
        )
        if feature is not None:
            query = query.where(DriftMetric.feature_name == feature)
        return [(a, m) for a, m in self.s.execute(query)]

    def production_model_ids(self) -> list[uuid.UUID]:
        return list(
            self.s.scalars(
                select(MLModel.id)
                .where(MLModel.status == "PRODUCTION")
                .order_by(MLModel.name)
            )
        )


class SqlAlertRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, alert: Alert) -> None:
        self.s.add(alert)

    def get(self, alert_id: uuid.UUID) -> Alert | None:
        return self.s.get(Alert, alert_id)

    def page(
        self,
        page: int,
        page_size: int,
        status: str | None,
        severity: str | None,
        alert_type: str | None,
        model_id: uuid.UUID | None,
    ) -> Page[Alert]:
        query = select(Alert).order_by(Alert.created_at.desc(), Alert.id)
        if status:
            query = query.where(Alert.status == status)
        if severity:
            query = query.where(Alert.severity == severity)
        if alert_type:
            query = query.where(Alert.alert_type == alert_type)
        if model_id is not None:
            query = query.where(Alert.model_id == model_id)
        return paginate(self.s, query, page, page_size)
