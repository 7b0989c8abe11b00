"""Alert rules and their evaluation.

``AlertRules`` manages the rules (CRUD). ``AlertEngine.evaluate`` turns signals (a
source, a model, an observed value, details) into alerts: each active rule of the
source that matches creates one alert, or, when the same rule already alerted for the
model within its cooldown, counts a repeat on that open alert. New alerts go to the bus
after their transaction commits, through an outbox: an alert stays PENDING until the
bus accepted its message, and ``publish_pending`` retries (the operational timer calls
it on every run)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.db.models import Alert, AlertRule
from shared.db.types import utcnow
from shared.errors import NotFound
from shared.services.alert_rule_spec import RuleSpec, matches, parse_rule
from shared.services.drift_views import parse_uuid
from shared.services.pagination import Page, check_page
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.ports import AlertBus, Transactions, UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signal:
    """One observation a rule can match: ``value`` is a number, or a status name for
    drift_status and bias_metric."""

    source: str
    model_id: uuid.UUID | None
    value: float | str
    details: dict[str, Any] = field(default_factory=dict)
    title: str | None = None


def rule_to_dict(r: AlertRule) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "name": r.name,
        "source": r.source,
        "alert_type": r.alert_type,
        "model_id": None if r.model_id is None else str(r.model_id),
        "condition": r.condition,
        "severity": r.severity,
        "cooldown_seconds": r.cooldown_seconds,
        "channels": list(r.channels or []),
        "action": r.action,
        "is_active": r.is_active,
        "is_default": r.is_default,
        "created_at": iso(r.created_at),
    }


def alert_message(alert: Alert, rule: AlertRule | None) -> dict[str, Any]:
    """The bus message's body: the alert, its rule's channels and action."""
    return {
        "alert_id": str(alert.id),
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "model_id": None if alert.model_id is None else str(alert.model_id),
        "rule_id": None if alert.rule_id is None else str(alert.rule_id),
        "rule_name": None if rule is None else rule.name,
        "title": alert.title,
        "details": alert.details,
        "created_at": iso(alert.created_at),
        "channels": [] if rule is None else list(rule.channels or []),
        "action": None if rule is None else rule.action,
    }


class AlertRules:
    def __init__(self, uow: Transactions) -> None:
        self.uow = uow

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = parse_rule(body)
        rule = AlertRule(id=uuid.uuid4(), created_at=utcnow(), is_default=False)
        with self.uow(write=True) as tx:
            self._apply(tx, rule, spec)
            tx.alert_rules.add(rule)
            tx.flush()
            return rule_to_dict(rule)

    def list_rules(self, page: int, page_size: int) -> Page[dict[str, Any]]:
        check_page(page, page_size)
        with self.uow() as tx:
            found = tx.alert_rules.page(page, page_size)
            items = [rule_to_dict(r) for r in found.items]
        return Page(items, found.page, found.page_size, found.total)

    def update(self, rule_id: str, body: dict[str, Any]) -> dict[str, Any]:
        key = parse_uuid(rule_id, "Alert rule")
        spec = parse_rule(body)
        with self.uow(write=True) as tx:
            rule = tx.alert_rules.get(key)
            if rule is None:
                raise NotFound(f"Alert rule {rule_id} not found.")
            self._apply(tx, rule, spec)
            tx.flush()
            return rule_to_dict(rule)

    def delete(self, rule_id: str) -> None:
        key = parse_uuid(rule_id, "Alert rule")
        with self.uow(write=True) as tx:
            rule = tx.alert_rules.get(key)
            if rule is None:
                raise NotFound(f"Alert rule {rule_id} not found.")
            tx.alert_rules.delete(rule)

    @staticmethod
    def _apply(tx: UnitOfWork, rule: AlertRule, spec: RuleSpec) -> None:
        model_id = None
        if spec.model_id is not None:
            try:
                model_id = uuid.UUID(spec.model_id)
            except ValueError:
                model_id = None
            if model_id is None or tx.models.get(model_id) is None:
                raise NotFound(f"Model {spec.model_id} not found.")
        rule.name = spec.name
        rule.source = spec.source
        rule.alert_type = spec.alert_type
        rule.model_id = model_id
        rule.metric_name = spec.source
        rule.operator = spec.op
        rule.threshold = spec.threshold
        rule.condition = {"op": spec.op, "value": spec.value}
        rule.severity = spec.severity
        rule.cooldown_seconds = spec.cooldown_seconds
        rule.channels = spec.channels
        rule.action = spec.action
        rule.is_active = spec.is_active


class AlertEngine:
    def __init__(self, uow: Transactions, bus: AlertBus) -> None:
        self.uow = uow
        self.bus = bus

    def evaluate(self, signals: list[Signal]) -> list[str]:
        """Match the signals against the active rules in one transaction, then publish
        the new alerts; the ids of the alerts created (repeats excluded)."""
        with self.uow(write=True) as tx:
            created = [str(a.id) for a in self.record(tx, signals)]
        if created:
            self.publish_pending()
        return created

    def evaluate_bias(
        self, model_id: str, status: str, details: dict[str, Any]
    ) -> list[str]:
        """A bias audit's outcome as a bias_metric signal (value = its status)."""
        return self.evaluate(
            [Signal("bias_metric", uuid.UUID(model_id), status, details)]
        )

    def run_operational(self, window_minutes: int) -> int:
        """The operational sources over the last window, per production model:
        latency_p99 (ms) and prediction_volume (count). Errors are not in the
        prediction log (only answered requests are), so no error_rate signal comes
        from it. Then the outbox's retry; the count of alerts created."""
        until = utcnow()
        since = until - timedelta(minutes=window_minutes)
        with self.uow() as tx:
            activity = tx.alert_rules.prediction_activity(since, until)
        window = {"window_start": iso(since), "window_end": iso(until)}
        signals: list[Signal] = []
        for a in activity:
            signals.append(
                Signal(
                    "prediction_volume",
                    a.model_id,
                    float(a.predictions),
                    {**window, "predictions": a.predictions},
                    f"{a.predictions} predictions in the last {window_minutes} min",
                )
            )
            if a.latency_p99_ms is not None:
                signals.append(
                    Signal(
                        "latency_p99",
                        a.model_id,
                        float(a.latency_p99_ms),
                        {**window, "predictions": a.predictions},
                        f"Latency p99 {a.latency_p99_ms:.1f} ms over the last "
                        f"{window_minutes} min",
                    )
                )
        created = self.evaluate(signals)
        self.publish_pending()
        return len(created)

    def record(self, tx: UnitOfWork, signals: list[Signal]) -> list[Alert]:
        """Inside the caller's transaction: the alerts created; the caller publishes
        (``publish_pending``) once it committed."""
        now = utcnow()
        created: list[Alert] = []
        for signal in signals:
            for rule in tx.alert_rules.matching(signal.source, signal.model_id):
                condition = rule.condition or {}
                if not matches(condition["op"], condition["value"], signal.value):
                    continue
                since = now - timedelta(seconds=rule.cooldown_seconds)
                open_alert = tx.alert_rules.open_alert(rule.id, signal.model_id, since)
                if open_alert is not None:
                    open_alert.occurrences = (open_alert.occurrences or 1) + 1
                    open_alert.last_seen_at = now
                    open_alert.details = {**(open_alert.details or {}), **_last(signal)}
                    continue
                alert = self._alert(rule, signal, now)
                tx.alerts.add(alert)
                created.append(alert)
        tx.flush()
        return created

    def publish_pending(self, limit: int = 100) -> int:
        """The outbox: publish every PENDING alert; a failure leaves it pending for
        the next run. The count published."""
        published = 0
        with self.uow() as tx:
            pending = [
                (a.id, alert_message(a, _rule(tx, a.rule_id)))
                for a in tx.alert_rules.unpublished(limit)
            ]
        for alert_id, message in pending:
            try:
                self.bus.publish(message)
            except Exception:
                log.exception("alert %s not published; retried later", alert_id)
                self._mark(alert_id, published=False)
                continue
            self._mark(alert_id, published=True)
            published += 1
        return published

    def _mark(self, alert_id: uuid.UUID, published: bool) -> None:
        with self.uow(write=True) as tx:
            alert = tx.alerts.get(alert_id)
            if alert is None:
                return
            alert.publish_attempts = (alert.publish_attempts or 0) + 1
            if published:
                alert.publish_state = "PUBLISHED"

    @staticmethod
    def _alert(rule: AlertRule, signal: Signal, now: datetime) -> Alert:
        condition = rule.condition or {}
        title = signal.title or (
            f"{rule.name}: {signal.source} {signal.value} "
            f"{condition.get('op')} {condition.get('value')}"
        )
        return Alert(
            id=uuid.uuid4(),
            model_id=signal.model_id,
            rule_id=rule.id,
            alert_type=rule.alert_type,
            severity=rule.severity,
            title=title[:255],
            details={
                "source": signal.source,
                "value": signal.value,
                "condition": condition,
                **signal.details,
            },
            status="ACTIVE",
            created_at=now,
            last_seen_at=now,
            occurrences=1,
            publish_state="PENDING",
            publish_attempts=0,
        )


def _last(signal: Signal) -> dict[str, Any]:
    return {"last_value": signal.value}


def _rule(tx: UnitOfWork, rule_id: uuid.UUID | None) -> AlertRule | None:
    return None if rule_id is None else tx.alert_rules.get(rule_id)
