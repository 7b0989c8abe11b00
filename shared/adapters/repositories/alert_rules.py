"""Alert rules, the open alert a rule repeats into, the alert outbox and the bus
consumers' delivery records."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shared.adapters.repositories.paging import paginate
from shared.db.models import Alert, AlertDelivery, AlertRule, MLModel, Prediction
from shared.ports import Page, PredictionActivity


class SqlAlertRuleRepository:
    def __init__(self, session: Session) -> None:
        self.s = session

    def add(self, rule: AlertRule) -> None:
        self.s.add(rule)

    def get(self, rule_id: uuid.UUID) -> AlertRule | None:
        return self.s.get(AlertRule, rule_id)

    def delete(self, rule: AlertRule) -> None:
        for alert in self.s.scalars(select(Alert).where(Alert.rule_id == rule.id)):
            alert.rule_id = None
        self.s.delete(rule)

    def page(self, page: int, page_size: int) -> Page[AlertRule]:
        query = select(AlertRule).order_by(AlertRule.created_at, AlertRule.name)
        return paginate(self.s, query, page, page_size)

    def matching(self, source: str, model_id: uuid.UUID | None) -> list[AlertRule]:
        """Active rules of the source for this model or for every model."""
        query = select(AlertRule).where(
            AlertRule.source == source, AlertRule.is_active.is_(True)
        )
        if model_id is None:
            query = query.where(AlertRule.model_id.is_(None))
        else:
            query = query.where(
                or_(AlertRule.model_id.is_(None), AlertRule.model_id == model_id)
            )
        return list(self.s.scalars(query.order_by(AlertRule.created_at)))

    def open_alert(
        self, rule_id: uuid.UUID, model_id: uuid.UUID | None, since: datetime
    ) -> Alert | None:
        """The rule's newest not-dismissed alert for the model seen since ``since``."""
        query = select(Alert).where(
            Alert.rule_id == rule_id,
            Alert.status != "DISMISSED",
            or_(Alert.last_seen_at >= since, Alert.created_at >= since),
        )
        query = query.where(
            Alert.model_id.is_(None) if model_id is None else Alert.model_id == model_id
        )
        return self.s.scalars(query.order_by(Alert.created_at.desc()).limit(1)).first()

    def unpublished(self, limit: int) -> list[Alert]:
        query = (
            select(Alert)
            .where(Alert.publish_state == "PENDING")
            .order_by(Alert.created_at)
            .limit(limit)
        )
        return list(self.s.scalars(query))

    def delivery(self, consumer: str, message_id: str) -> AlertDelivery | None:
        return self.s.scalars(
            select(AlertDelivery).where(
                AlertDelivery.consumer == consumer,
                AlertDelivery.message_id == message_id,
            )
        ).first()

    def add_delivery(self, delivery: AlertDelivery) -> None:
        self.s.add(delivery)

    def deliveries(self, alert_id: uuid.UUID) -> list[AlertDelivery]:
        return list(
            self.s.scalars(
                select(AlertDelivery)
                .where(AlertDelivery.alert_id == alert_id)
                .order_by(AlertDelivery.created_at)
            )
        )

    def prediction_activity(
        self, since: datetime, until: datetime
    ) -> list[PredictionActivity]:
        """Per production model: predictions logged in [since, until) and their p99
        latency (nearest rank; None without a latency)."""
        found: list[PredictionActivity] = []
        production = self.s.scalars(
            select(MLModel.id).where(MLModel.status == "PRODUCTION")
        )
        for model_id in list(production):
            window = (
                Prediction.model_id == model_id,
                Prediction.created_at >= since,
                Prediction.created_at < until,
            )
            count = self.s.scalar(select(func.count()).where(*window)) or 0
            timed = (
                self.s.scalar(
                    select(func.count()).where(
                        *window, Prediction.latency_ms.is_not(None)
                    )
                )
                or 0
            )
            p99 = None
            if timed:
                p99 = self.s.scalar(
                    select(Prediction.latency_ms)
                    .where(*window, Prediction.latency_ms.is_not(None))
                    .order_by(Prediction.latency_ms.desc())
                    .offset(timed // 100)
                    .limit(1)
                )
            found.append(PredictionActivity(model_id, int(count), p99))
        return found
