"""Publishing alerts to the Service Bus topic ``alerts``: one message per new alert,
message id = alert id (the topic's duplicate detection drops a re-publish), subject =
alert type, severity and model in the application properties (subscription filters)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.servicebus import ServiceBusClient, ServiceBusMessage

ALERTS_TOPIC = "alerts"


def alert_bus_message(alert: dict[str, Any]) -> ServiceBusMessage:
    from azure.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        json.dumps(alert),
        message_id=alert["alert_id"],
        subject=alert["alert_type"],
        content_type="application/json",
        application_properties={
            "severity": alert["severity"],
            "model_id": alert.get("model_id") or "",
        },
    )


class ServiceBusAlertBus:
    """``AlertBus`` on a Service Bus namespace (connection string or managed identity)."""

    def __init__(
        self,
        topic: str = ALERTS_TOPIC,
        connection_string: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.topic = topic
        self.connection_string = connection_string
        self.namespace = namespace

    def _client(self) -> ServiceBusClient:
        from azure.servicebus import ServiceBusClient

        if self.connection_string:
            return ServiceBusClient.from_connection_string(self.connection_string)
        if self.namespace:
            from azure.identity import DefaultAzureCredential

            return ServiceBusClient(self.namespace, DefaultAzureCredential())
        raise RuntimeError(
            "Set SH_SERVICEBUS_CONNECTION_STRING or SH_SERVICEBUS_NAMESPACE to "
            "publish alerts"
        )

    def publish(self, alert: dict[str, Any]) -> None:
        with self._client() as client, client.get_topic_sender(self.topic) as sender:
            sender.send_messages(alert_bus_message(alert))
