"""Alerts through the API on both stacks: rules (CRUD, 422 naming the field), signals
evaluated against them (one alert, repeats counted within the cooldown), the
operational sources from the prediction log, and the lifecycle (acknowledge, dismiss,
409s)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete

from shared.adapters.bus.in_process import InProcessAlertBus
from shared.container import Container
from shared.db.models import AlertRule, MLModel, Prediction
from shared.db.types import utcnow
from shared.services.alert_rules import Signal
from tests.support.serving import API

RULES = f"{API}/alerts/rules"


def _model(ctx: Container) -> uuid.UUID:
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name=f"fraud-{str(model_id)[:8]}",
                version="1",
                algorithm="xgboost",
                storage_path="models/x",
                status="PRODUCTION",
            )
        )
        s.commit()
    return model_id


def _rule(**over: Any) -> dict[str, Any]:
    return {
        "name": "drift critical",
        "source": "drift_status",
        "condition": {"op": ">=", "value": "CRITICAL"},
        "severity": "CRITICAL",
        "cooldown": "1h",
        "channels": ["https://example.org/hook"],
        **over,
    }


@pytest.fixture
def bare(ctx: Container) -> Container:
    """No rules but the test's own (PostgreSQL's tables are truncated anyway)."""
    with ctx.db.session() as s:
        s.execute(delete(AlertRule))
        s.commit()
    ctx.bus = InProcessAlertBus()
    return ctx


def test_rules_crud_and_bad_rules(client: Any, bare: Container) -> None:
    model_id = str(_model(bare))
    resp = client.post(RULES, json=_rule(model_id=model_id))
    assert resp.status_code == 201, resp.text
    rule = resp.json()["data"]
    assert (rule["cooldown_seconds"], rule["alert_type"], rule["model_id"]) == (
        3600,
        "DRIFT",
        model_id,
    )
    listed = client.get(RULES).json()["data"]
    assert [r["id"] for r in listed] == [rule["id"]]
    changed = client.put(
        f"{RULES}/{rule['id']}",
        json=_rule(cooldown=120, severity="WARNING", is_active=False),
    ).json()["data"]
    assert (changed["cooldown_seconds"], changed["severity"], changed["is_active"]) == (
        120,
        "WARNING",
        False,
    )

    def field(body: dict[str, Any]) -> set[str]:
        resp = client.post(RULES, json=body)
        assert resp.status_code == 422, resp.text
        return {d["field"] for d in resp.json()["error"]["details"]}

    assert "source" in str(field(_rule(source="cpu")))
    assert "op" in str(field(_rule(condition={"op": "!=", "value": 1})))
    assert field(_rule(source="latency_p99")) == {"condition.value"}
    assert field(_rule(condition={"op": ">", "value": 3})) == {"condition.value"}
    assert "channels" in str(field(_rule(channels=["ftp://x/y"])))
    assert "cooldown" in str(field(_rule(cooldown="soon")))
    assert "data_strategy" in str(
        field(_rule(action={"type": "retrain", "data_strategy": {"type": "all"}}))
    )
    assert client.post(RULES, json=_rule(model_id=str(uuid.uuid4()))).status_code == 404
    assert len(client.get(RULES).json()["data"]) == 1  # nothing half-written
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 404
    assert client.put(f"{RULES}/{uuid.uuid4()}", json=_rule()).status_code == 404


def test_a_match_alerts_once_and_repeats_count(client: Any, bare: Container) -> None:
    model_id = _model(bare)
    other = _model(bare)
    client.post(RULES, json=_rule())
    client.post(
        RULES,
        json=_rule(
            name="slow",
            source="latency_p99",
            condition={"op": ">", "value": 50},
            severity="WARNING",
            model_id=str(other),
        ),
    )
    engine = bare.alert_engine
    first = engine.evaluate([Signal("drift_status", model_id, "CRITICAL")])
    assert len(first) == 1
    assert engine.evaluate([Signal("drift_status", model_id, "WARNING")]) == []
    assert engine.evaluate([Signal("drift_status", model_id, "CRITICAL")]) == []
    # the latency rule is the other model's only
    assert engine.evaluate([Signal("latency_p99", model_id, 80.0)]) == []
    alert = client.get(f"{API}/alerts/{first[0]}").json()["data"]
    assert (alert["occurrences"], alert["severity"], alert["alert_type"]) == (
        2,
        "CRITICAL",
        "DRIFT",
    )
    assert alert["details"]["source"] == "drift_status"
    bus = bare.bus
    assert isinstance(bus, InProcessAlertBus)
    assert [m.message_id for m in bus.published] == first  # new alerts only
    (slow,) = engine.evaluate([Signal("latency_p99", other, 80.0)])
    found = client.get(
        f"{API}/alerts", params={"type": "LATENCY", "model_id": str(other)}
    ).json()["data"]
    assert [a["id"] for a in found] == [slow]


def test_operational_sources_from_the_prediction_log(
    client: Any, bare: Container
) -> None:
    model_id = _model(bare)
    now = utcnow()
    with bare.db.session() as s:
        s.add_all(
            Prediction(
                id=uuid.uuid4(),
                created_at=now - timedelta(seconds=i + 1),
                model_id=model_id,
                input_features={},
                fraud_score=0.1,
                is_fraud=False,
                latency_ms=100.0 if i < 5 else 5.0,
            )
            for i in range(100)
        )
        s.commit()
    client.post(
        RULES,
        json=_rule(
            name="slow", source="latency_p99", condition={"op": ">", "value": 50}
        ),
    )
    client.post(
        RULES,
        json=_rule(
            name="quiet",
            source="prediction_volume",
            condition={"op": "<", "value": 1000},
            severity="INFO",
        ),
    )
    assert bare.alert_engine.run_operational(15) == 2
    found = client.get(f"{API}/alerts", params={"model_id": str(model_id)}).json()
    by_source = {a["details"]["source"]: a for a in found["data"]}
    assert by_source["latency_p99"]["details"]["value"] == 100.0
    assert by_source["prediction_volume"]["details"]["value"] == 100.0
    assert bare.alert_engine.run_operational(15) == 0  # within the cooldown


def test_lifecycle(client: Any, bare: Container) -> None:
    model_id = _model(bare)
    client.post(RULES, json=_rule())
    client.post(RULES, json=_rule(name="again", severity="WARNING"))
    one, two = bare.alert_engine.evaluate(
        [Signal("drift_status", model_id, "CRITICAL")]
    )
    ack = client.post(
        f"{API}/alerts/{one}/acknowledge", json={"note": "looking", "actor": "ana"}
    )
    assert ack.status_code == 200, ack.text
    data = ack.json()["data"]
    assert (data["status"], data["acknowledged_by"], data["ack_note"]) == (
        "ACKNOWLEDGED",
        "ana",
        "looking",
    )
    assert data["acknowledged_at"] is not None
    anon = client.post(f"{API}/alerts/{two}/acknowledge").json()["data"]
    assert anon["acknowledged_by"] == "anonymous"
    assert client.post(f"{API}/alerts/{one}/dismiss", json={}).status_code == 422
    gone = client.post(f"{API}/alerts/{one}/dismiss", json={"reason": "known"})
    assert gone.json()["data"]["status"] == "DISMISSED"
    assert gone.json()["data"]["dismissed_reason"] == "known"
    again = client.post(f"{API}/alerts/{one}/dismiss", json={"reason": "x"})
    assert again.status_code == 409
    assert client.post(f"{API}/alerts/{one}/acknowledge").status_code == 409
    assert client.post(f"{API}/alerts/{uuid.uuid4()}/acknowledge").status_code == 404
    listed = client.get(f"{API}/alerts", params={"status": "DISMISSED"}).json()
    assert [a["id"] for a in listed["data"]] == [one]
    # a dismissed alert is not the open one: the next match alerts anew
    again_ids = bare.alert_engine.evaluate(
        [Signal("drift_status", model_id, "CRITICAL")]
    )
    assert len(again_ids) == 1
