"""What the alert bus's consumers do with a new alert's message, each once per message
id (a redelivered message finds its delivery row and does nothing again):

- ``notify``: posts the alert to the rule's webhook channels (Teams- and Slack-style
  incoming webhook bodies), each with retries and exponential backoff; a channel still
  failing raises, so the host redelivers and, past its max delivery count,
  dead-letters the message. Channels already notified are not posted again.
- ``audit``: the audit trail row of the message.
- ``retrain``: the rule's retrain action through the retraining service."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from shared.db.models import AlertDelivery
from shared.ports import Duplicate

if TYPE_CHECKING:
    from shared.ports import Transactions

log = logging.getLogger(__name__)

Post = Callable[[str, dict[str, Any], float], None]
COLOURS = {"INFO": "0078D7", "WARNING": "FFA500", "CRITICAL": "D13438"}


class AlertRetraining(Protocol):
    """The retraining service's entry for an alert's retrain action: the job id."""

    def trigger_from_alert(
        self, alert: dict[str, Any], action: dict[str, Any]
    ) -> str: ...


class WebhookFailed(RuntimeError):
    """A channel refused every attempt of this delivery."""


def post_json(url: str, body: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (rules accept http/https only)
        response.read()


def webhook_body(url: str, alert: dict[str, Any]) -> dict[str, Any]:
    """Slack's incoming webhook body for hooks.slack.com, else a Teams MessageCard
    (which also carries ``text``, what most other incoming webhooks read)."""
    text = f"[{alert['severity']}] {alert['title']}"
    facts = [
        ("Type", alert["alert_type"]),
        ("Severity", alert["severity"]),
        ("Model", alert.get("model_id") or "all"),
        ("Rule", alert.get("rule_name") or ""),
        ("Alert", alert["alert_id"]),
    ]
    if urlsplit(url).hostname == "hooks.slack.com" or "/slack" in url:
        return {
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in facts
                    ],
                },
            ],
        }
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": alert["title"],
        "themeColor": COLOURS.get(alert["severity"], "0078D7"),
        "title": text,
        "text": text,
        "sections": [{"facts": [{"name": k, "value": v} for k, v in facts]}],
    }


class AlertDeliveries:
    def __init__(
        self,
        uow: Transactions,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        post: Post = post_json,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.uow = uow
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.post = post
        self.sleep = sleep

    def notify(self, message_id: str, alert: dict[str, Any]) -> int:
        """Post to every channel not yet notified for this message; the count posted.
        Raises WebhookFailed when a channel failed every attempt."""
        posted = 0
        failed: list[str] = []
        for i, url in enumerate(alert.get("channels") or []):
            key = f"{message_id}#{i}"
            if self._done("webhook", key):
                continue
            error = self._post_with_retries(url, webhook_body(url, alert))
            if error is not None:
                failed.append(f"{url}: {error}")
                continue
            self._record("webhook", key, alert, "DELIVERED", {"url": url})
            posted += 1
        if failed:
            raise WebhookFailed("; ".join(failed))
        return posted

    def audit(
        self, message_id: str, alert: dict[str, Any], delivery_count: int
    ) -> bool:
        """The audit row of the message; False when it was already recorded."""
        details = {
            "alert_type": alert.get("alert_type"),
            "severity": alert.get("severity"),
            "model_id": alert.get("model_id"),
            "title": alert.get("title"),
            "delivery_count": delivery_count,
        }
        return self._record("audit", message_id, alert, "RECEIVED", details)

    def retrain(
        self, message_id: str, alert: dict[str, Any], retraining: AlertRetraining
    ) -> str | None:
        """The retraining job id the rule's retrain action started (the same one on a
        redelivery); None when the rule has no retrain action."""
        action = alert.get("action")
        if not isinstance(action, dict) or action.get("type") != "retrain":
            return None
        with self.uow() as tx:
            done = tx.alert_rules.delivery("retrain", message_id)
            if done is not None:
                return str((done.details or {}).get("job_id"))
        job_id = retraining.trigger_from_alert(alert, action)
        self._record("retrain", message_id, alert, "TRIGGERED", {"job_id": job_id})
        log.info("alert %s started retraining job %s", message_id, job_id)
        return job_id

    def _post_with_retries(self, url: str, body: dict[str, Any]) -> str | None:
        error = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                self.post(url, body, self.timeout_seconds)
                return None
            except Exception as exc:  # any transport or HTTP error: retry
                error = f"{type(exc).__name__}: {exc}"
                log.warning("webhook %s attempt %d failed: %s", url, attempt + 1, error)
        return error

    def _done(self, consumer: str, key: str) -> bool:
        with self.uow() as tx:
            return tx.alert_rules.delivery(consumer, key) is not None

    def _record(
        self,
        consumer: str,
        key: str,
        alert: dict[str, Any],
        outcome: str,
        details: dict[str, Any],
    ) -> bool:
        alert_id = alert.get("alert_id")
        try:
            with self.uow(write=True) as tx:
                if tx.alert_rules.delivery(consumer, key) is not None:
                    return False
                tx.alert_rules.add_delivery(
                    AlertDelivery(
                        id=uuid.uuid4(),
                        consumer=consumer,
                        message_id=key,
                        alert_id=None if alert_id is None else uuid.UUID(alert_id),
                        outcome=outcome,
                        details=details,
                    )
                )
                tx.flush()
        except Duplicate:  # a concurrent delivery of the same message won
            return False
        return True
