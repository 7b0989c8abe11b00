"""Reading alerts: the rows drift audits (and later rules) record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.errors import NotFound
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
        "acknowledged_by": None
        if a.acknowledged_by is None
        else str(a.acknowledged_by),
        "acknowledged_at": iso(a.acknowledged_at),
        "created_at": iso(a.created_at),
    }


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
