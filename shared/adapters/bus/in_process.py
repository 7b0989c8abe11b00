"""The local runtime's alert bus: the same messages, delivered in this process to the
same consumer functions the Functions host triggers on Azure, one per subscription.

A consumer that raises is retried up to ``max_delivery_count`` deliveries, then the
message is dead-lettered: kept in ``dead_letters`` (and logged), as Service Bus keeps
it in the subscription's dead-letter queue. A message id seen among the last
``KEPT`` is not delivered again (the topic's duplicate detection)."""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

KEPT = 1000  # published messages, dead letters and message ids remembered


@dataclass(frozen=True)
class BusMessage:
    """What a consumer receives: the body and the broker's fields."""

    message_id: str
    subject: str
    body: bytes
    application_properties: dict[str, Any]
    delivery_count: int


Consumer = Callable[[BusMessage], None]


@dataclass
class DeadLetter:
    subscription: str
    message_id: str
    reason: str


@dataclass
class InProcessAlertBus:
    max_delivery_count: int = 5
    subscriptions: dict[str, Consumer] = field(default_factory=dict)
    # the most recent only: a long-running local server keeps publishing
    published: deque[BusMessage] = field(default_factory=lambda: deque(maxlen=KEPT))
    dead_letters: deque[DeadLetter] = field(default_factory=lambda: deque(maxlen=KEPT))
    _seen: deque[str] = field(default_factory=lambda: deque(maxlen=KEPT))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def subscribe(self, subscription: str, consumer: Consumer) -> None:
        self.subscriptions[subscription] = consumer

    def publish(self, alert: dict[str, Any]) -> None:
        message_id = alert["alert_id"]
        with self._lock:
            if message_id in self._seen:
                return
            self._seen.append(message_id)
        properties = {
            "severity": alert["severity"],
            "model_id": alert.get("model_id") or "",
        }
        body = json.dumps(alert).encode()
        self.published.append(
            BusMessage(message_id, alert["alert_type"], body, properties, 0)
        )
        for name, consumer in list(self.subscriptions.items()):
            self._deliver(
                name, consumer, message_id, alert["alert_type"], body, properties
            )

    def _deliver(
        self,
        subscription: str,
        consumer: Consumer,
        message_id: str,
        subject: str,
        body: bytes,
        properties: dict[str, Any],
    ) -> None:
        reason = ""
        for count in range(1, self.max_delivery_count + 1):
            try:
                consumer(BusMessage(message_id, subject, body, properties, count))
                return
            except Exception as exc:  # the host would abandon and redeliver
                reason = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "alert message %s on %s failed (delivery %d): %s",
                    message_id,
                    subscription,
                    count,
                    reason,
                )
        self.dead_letters.append(DeadLetter(subscription, message_id, reason))
        log.error(
            "alert message %s dead-lettered on %s after %d deliveries (%d dead letters)",
            message_id,
            subscription,
            self.max_delivery_count,
            len(self.dead_letters),
        )
