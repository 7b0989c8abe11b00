"""The alert bus: the Service Bus message a new alert becomes, the outbox (a bus that
refuses keeps the alert pending until the next run), and the topic consumers invoked
as the host invokes them: the audit trail once per message id, webhooks to a real
local HTTP server (Teams / Slack bodies, retries, then failure and dead-lettering),
the retrain action through the retraining service, and their trigger metadata."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from sqlalchemy import delete, select

from functions.bus import alerts as consumers
from local.alert_bus import attach_consumers, functions_message
from shared.adapters.bus.azure_service_bus import alert_bus_message
from shared.adapters.bus.in_process import BusMessage, InProcessAlertBus
from shared.container import Container, use
from shared.db.models import Alert, AlertDelivery, AlertRule, MLModel
from shared.db.session import Database
from shared.services.alert_delivery import AlertDeliveries
from shared.services.alert_rules import AlertEngine, AlertRules, Signal
from tests.conftest import make_settings


@dataclass
class Hook:
    """A webhook receiver on 127.0.0.1 that fails its first ``failures`` requests."""

    failures: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            state.attempts += 1
            if state.attempts <= state.failures:
                self.send_response(500)
                self.end_headers()
                return
            state.received.append(body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class FakeRetraining:
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def trigger_from_alert(self, alert: dict[str, Any], action: dict[str, Any]) -> str:
        self.calls.append((alert, action))
        return f"job-{len(self.calls)}"


@pytest.fixture
def app_ctx(sqlite_db: Database, tmp_path: Path) -> Iterator[Container]:
    settings = make_settings(tmp_path, webhook_attempts=3, webhook_backoff_seconds=0.0)
    from shared.adapters.blobs.factory import make_blob_store

    ctx = Container(settings=settings, db=sqlite_db, blobs=make_blob_store(settings))
    with sqlite_db.session() as s:
        s.execute(delete(AlertRule))
        s.commit()
    use(ctx)
    yield ctx
    use(None)


def _model(ctx: Container) -> uuid.UUID:
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name=f"m-{model_id}",
                version="1",
                algorithm="xgboost",
                storage_path="x",
                status="PRODUCTION",
            )
        )
        s.commit()
    return model_id


def _rule(ctx: Container, **over: Any) -> dict[str, Any]:
    return AlertRules(ctx.uow).create(
        {
            "name": "drift",
            "source": "drift_status",
            "condition": {"op": ">=", "value": "WARNING"},
            "severity": "CRITICAL",
            **over,
        }
    )


class Refusing:
    def __init__(self) -> None:
        self.down = True
        self.sent: list[dict[str, Any]] = []

    def publish(self, alert: dict[str, Any]) -> None:
        if self.down:
            raise ConnectionError("bus unavailable")
        self.sent.append(alert)


def test_the_service_bus_message_of_an_alert(app_ctx: Container) -> None:
    model_id = _model(app_ctx)
    _rule(app_ctx, channels=["https://example.org/x"])
    bus = Refusing()
    bus.down = False
    (alert_id,) = AlertEngine(app_ctx.uow, bus).evaluate(
        [Signal("drift_status", model_id, "CRITICAL", {"audit_id": "a"})]
    )
    (sent,) = bus.sent
    msg = alert_bus_message(sent)
    assert msg.message_id == alert_id
    assert msg.subject == "DRIFT"
    assert msg.content_type == "application/json"
    assert msg.application_properties == {
        "severity": "CRITICAL",
        "model_id": str(model_id),
    }
    body = json.loads(b"".join(msg.body))
    assert body["channels"] == ["https://example.org/x"]
    assert body["details"]["audit_id"] == "a"


def test_the_outbox_keeps_an_alert_the_bus_refused(app_ctx: Container) -> None:
    model_id = _model(app_ctx)
    _rule(app_ctx)
    bus = Refusing()
    engine = AlertEngine(app_ctx.uow, bus)
    (alert_id,) = engine.evaluate([Signal("drift_status", model_id, "CRITICAL")])
    with app_ctx.db.session() as s:
        alert = s.get(Alert, uuid.UUID(alert_id))
        assert alert is not None
        assert (alert.publish_state, alert.publish_attempts) == ("PENDING", 1)
    assert engine.publish_pending() == 0
    bus.down = False
    assert engine.publish_pending() == 1
    assert [m["alert_id"] for m in bus.sent] == [alert_id]
    assert engine.publish_pending() == 0
    with app_ctx.db.session() as s:
        alert = s.get(Alert, uuid.UUID(alert_id))
        assert alert is not None and alert.publish_state == "PUBLISHED"


def _message(alert: dict[str, Any], delivery_count: int = 1) -> func.ServiceBusMessage:
    return functions_message(
        BusMessage(
            alert["alert_id"],
            alert["alert_type"],
            json.dumps(alert).encode(),
            {"severity": alert["severity"], "model_id": alert.get("model_id") or ""},
            delivery_count,
        )
    )


def _alert(**over: Any) -> dict[str, Any]:
    return {
        "alert_id": str(uuid.uuid4()),
        "alert_type": "DRIFT",
        "severity": "CRITICAL",
        "model_id": None,
        "rule_id": None,
        "rule_name": "drift",
        "title": "Drift CRITICAL",
        "details": {},
        "created_at": None,
        "channels": [],
        "action": None,
        **over,
    }


def test_the_audit_trail_handles_a_redelivery_once(app_ctx: Container) -> None:
    alert = _alert()
    consumers.alert_audit(_message(alert))
    consumers.alert_audit(_message(alert, delivery_count=2))
    with app_ctx.db.session() as s:
        rows = list(s.scalars(select(AlertDelivery)))
    assert [(r.consumer, r.message_id, r.outcome) for r in rows] == [
        ("audit", alert["alert_id"], "RECEIVED")
    ]


def test_webhooks_post_teams_and_slack_bodies(app_ctx: Container, hook: Hook) -> None:
    slack = hook.url.replace("/hook", "/slack/hook")
    alert = _alert(channels=[hook.url, slack])
    consumers.alert_webhooks(_message(alert))
    teams, slack_body = hook.received
    assert teams["@type"] == "MessageCard" and "Drift CRITICAL" in teams["title"]
    assert slack_body["text"] == "[CRITICAL] Drift CRITICAL"
    consumers.alert_webhooks(_message(alert, delivery_count=2))
    assert len(hook.received) == 2  # a redelivery posts nothing again


def test_a_failing_webhook_retries_then_fails_the_delivery(
    app_ctx: Container, hook: Hook
) -> None:
    hook.failures = 2
    consumers.alert_webhooks(_message(_alert(channels=[hook.url])))
    assert (hook.attempts, len(hook.received)) == (3, 1)  # two failures, then posted
    hook.failures, hook.attempts = 1000, 0
    with pytest.raises(Exception, match="HTTP Error 500"):
        consumers.alert_webhooks(_message(_alert(channels=[hook.url])))
    assert hook.attempts == 3


def test_the_in_process_bus_dead_letters_after_its_max_deliveries(
    app_ctx: Container, hook: Hook
) -> None:
    from function_app import app

    hook.failures = 1000
    bus = InProcessAlertBus(max_delivery_count=2)
    assert attach_consumers(app, bus, "alerts") == ["audit", "retrain", "webhooks"]
    model_id = _model(app_ctx)
    _rule(app_ctx, channels=[hook.url])
    app_ctx.bus = bus
    (alert_id,) = app_ctx.alert_engine.evaluate(
        [Signal("drift_status", model_id, "CRITICAL")]
    )
    assert hook.attempts == 2 * 3  # deliveries x attempts
    assert [(d.subscription, d.message_id) for d in bus.dead_letters] == [
        ("webhooks", alert_id)
    ]
    with app_ctx.db.session() as s:
        audit = s.scalars(select(AlertDelivery.consumer)).all()
        alert = s.get(Alert, uuid.UUID(alert_id))
        assert alert is not None and alert.publish_state == "PUBLISHED"
    assert audit == ["audit"]


def test_the_retrain_action_starts_one_job(app_ctx: Container) -> None:
    retraining = FakeRetraining()
    app_ctx.__dict__["retraining"] = retraining
    action = {
        "type": "retrain",
        "data_strategy": {"type": "replace", "new_dataset_id": "d"},
        "auto_promote": True,
    }
    alert = _alert(action=action)
    consumers.alert_retrain(_message(alert))
    consumers.alert_retrain(_message(alert, delivery_count=2))
    assert len(retraining.calls) == 1
    assert retraining.calls[0][1] == action
    assert retraining.calls[0][0]["alert_id"] == alert["alert_id"]
    deliveries = AlertDeliveries(app_ctx.uow)
    assert deliveries.retrain(alert["alert_id"], alert, retraining) == "job-1"
    consumers.alert_retrain(_message(_alert()))  # no action: nothing
    assert len(retraining.calls) == 1


def test_the_consumers_are_topic_triggers_of_their_subscriptions() -> None:
    from function_app import app

    memo = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = {f.get_function_name(): f for f in app.get_functions()}
    finally:
        app.functions_bindings = memo
    for name, subscription in (
        ("alert_webhooks", "webhooks"),
        ("alert_audit", "audit"),
        ("alert_retrain", "retrain"),
    ):
        (binding,) = [json.loads(b) for b in functions[name].get_raw_bindings()]
        assert binding == {
            "direction": "IN",
            "type": "serviceBusTrigger",
            "name": "msg",
            "connection": "ServiceBusConnection",
            "topicName": "alerts",
            "subscriptionName": subscription,
        }


def test_bias_audits_alert_through_their_status(app_ctx: Container) -> None:
    model_id = _model(app_ctx)
    _rule(
        app_ctx,
        name="bias",
        source="bias_metric",
        condition={"op": ">=", "value": "CRITICAL"},
    )
    engine = app_ctx.alert_engine
    assert engine.evaluate_bias(str(model_id), "WARNING", {"attribute": "age"}) == []
    (alert_id,) = engine.evaluate_bias(
        str(model_id), "CRITICAL", {"attribute": "age", "metric": "disparate_impact"}
    )
    with app_ctx.db.session() as s:
        alert = s.get(Alert, uuid.UUID(alert_id))
        assert alert is not None
        assert (alert.alert_type, alert.severity) == ("BIAS", "CRITICAL")
        assert alert.details is not None and alert.details["attribute"] == "age"
