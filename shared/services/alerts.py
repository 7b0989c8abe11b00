"""Alerts: reading them (the rows the alert rules create) and their lifecycle,
ACTIVE -> ACKNOWLEDGED -> DISMISSED (or ACTIVE -> DISMISSED). Acknowledging a dismissed
alert, or dismissing one twice, is a conflict."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.db.types import utcnow
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.drift_views import parse_uuid
from shared.services.monitoring_commands import AlertQuery
from shared.services.pagination import Page, check_page
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.db.models import Alert
    from shared.ports import Transactions


def alert_to_dict(a: Alert) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "model_id": None if a.model_id is None else str(a.model_id),
        "rule_id": None if a.rule_id is None else str(a.rule_id),
        "alert_type": a.alert_type,
        "severity": a.severity,
        "title": a.title,
        "details": a.details,
        "status": a.status,
        "acknowledged_by": a.acknowledged_by_name
        if a.acknowledged_by_name is not None or a.acknowledged_by is None
        else str(a.acknowledged_by),
        "acknowledged_at": iso(a.acknowledged_at),
        "ack_note": a.ack_note,
        "dismissed_reason": a.dismissed_reason,
        "dismissed_at": iso(a.dismissed_at),
        "occurrences": a.occurrences or 1,
        "last_seen_at": iso(a.last_seen_at or a.created_at),
        "created_at": iso(a.created_at),
    }


def _actor(actor: str | None) -> str:
    return (actor or "").strip() or "anonymous"


class AlertService:
    def __init__(self, uow: Transactions) -> None:
        self.uow = uow

    def list_alerts(self, query: AlertQuery) -> Page[dict[str, Any]]:
        """Newest first."""
        check_page(query.page, query.page_size)
        with self.uow() as tx:
            found = tx.alerts.page(
                query.page,
                query.page_size,
                query.status,
                query.severity,
                query.alert_type,
                query.model_id,
            )
            items = [alert_to_dict(a) for a in found.items]
        return Page(items, found.page, found.page_size, found.total)

    def get(self, alert_id: str) -> dict[str, Any]:
        key = parse_uuid(alert_id, "Alert")
        with self.uow() as tx:
            alert = tx.alerts.get(key)
            if alert is None:
                raise NotFound(f"Alert {alert_id} not found.")
            return alert_to_dict(alert)

    def acknowledge(
        self, alert_id: str, note: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """Who and when; acknowledging twice keeps the first record."""
        key = parse_uuid(alert_id, "Alert")
        with self.uow(write=True) as tx:
            alert = tx.alerts.get(key)
            if alert is None:
                raise NotFound(f"Alert {alert_id} not found.")
            if alert.status == "DISMISSED":
                raise Conflict(f"Alert {alert_id} is dismissed.")
            if alert.status != "ACKNOWLEDGED":
                alert.status = "ACKNOWLEDGED"
                alert.acknowledged_at = utcnow()
                alert.acknowledged_by_name = _actor(actor)
                alert.ack_note = note
            return alert_to_dict(alert)

    def dismiss(
        self, alert_id: str, reason: str, actor: str | None = None
    ) -> dict[str, Any]:
        key = parse_uuid(alert_id, "Alert")
        if not reason.strip():
            raise ValidationFailed(
                "reason is required.", field_error("reason", "must not be blank")
            )
        with self.uow(write=True) as tx:
            alert = tx.alerts.get(key)
            if alert is None:
                raise NotFound(f"Alert {alert_id} not found.")
            if alert.status == "DISMISSED":
                raise Conflict(f"Alert {alert_id} is already dismissed.")
            alert.status = "DISMISSED"
            alert.dismissed_at = utcnow()
            alert.dismissed_reason = reason.strip()
            details = dict(alert.details or {})
            details["dismissed_by"] = _actor(actor)
            alert.details = details
            return alert_to_dict(alert)
