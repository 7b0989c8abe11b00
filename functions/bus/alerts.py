"""The consumers of the ``alerts`` topic: a webhook notifier, an audit trail and the
auto-retrain action, each on its own subscription. Each is at-least-once safe: a
redelivered message (same message id) is handled once (``AlertDeliveries``). A
consumer that raises abandons the message; the host redelivers it and, after the
subscription's max delivery count, dead-letters it."""

from __future__ import annotations

import json
import logging
from typing import Any

import azure.functions as func

log = logging.getLogger("shadow_hubble.alerts")

ALERTS_TOPIC = "alerts"
CONNECTION = "ServiceBusConnection"

# azure-functions leaves Blueprint's constructor unannotated
bp = func.Blueprint()  # type: ignore[no-untyped-call]


def _alert(msg: func.ServiceBusMessage) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = json.loads(msg.get_body())
    return str(msg.message_id or body["alert_id"]), body


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name=ALERTS_TOPIC,
    subscription_name="webhooks",
    connection=CONNECTION,
)
def alert_webhooks(msg: func.ServiceBusMessage) -> None:
    """Post the alert to its rule's webhook channels (Teams / Slack style)."""
    from shared.container import container

    message_id, alert = _alert(msg)
    posted = container().alert_deliveries.notify(message_id, alert)
    log.info("alert %s: %d webhook(s) notified", message_id, posted)


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name=ALERTS_TOPIC,
    subscription_name="audit",
    connection=CONNECTION,
)
def alert_audit(msg: func.ServiceBusMessage) -> None:
    """The audit trail row of the message, once per message id."""
    from shared.container import container

    message_id, alert = _alert(msg)
    recorded = container().alert_deliveries.audit(
        message_id, alert, int(msg.delivery_count or 1)
    )
    if not recorded:
        log.info("alert %s: redelivered message ignored by the audit", message_id)


@bp.service_bus_topic_trigger(
    arg_name="msg",
    topic_name=ALERTS_TOPIC,
    subscription_name="retrain",
    connection=CONNECTION,
)
def alert_retrain(msg: func.ServiceBusMessage) -> None:
    """The rule's retrain action: a retraining job from the alert."""
    from shared.container import container

    message_id, alert = _alert(msg)
    c = container()
    if not alert.get("action"):
        return
    # the retraining service is wired on the container by the retraining work
    retraining = getattr(c, "retraining")  # noqa: B009
    job_id = c.alert_deliveries.retrain(message_id, alert, retraining)
    log.info("alert %s: retraining job %s", message_id, job_id)
