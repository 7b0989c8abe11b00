"""The bias gate of promotion to production: a CRITICAL pre-deployment audit refuses the
model (409 naming the attribute and metric) unless overridden with a reason, which the
transition records; a model without an audit passes."""

from __future__ import annotations

import uuid
from typing import Any

from shared.container import Container
from shared.db.models import MLModel
from shared.services.promotion_gates import bias_gate

API = "/api/v1/models"


def _audit(status: str, metric_status: str) -> dict[str, Any]:
    return {
        "audit_id": str(uuid.uuid4()),
        "status": status,
        "computed_at": "2026-12-08T00:00:00Z",
        "attributes": [
            {
                "attribute": "gender",
                "status": status,
                "metrics": {
                    "demographic_parity_diff": {"value": 0.4, "status": metric_status},
                    "disparate_impact": {"value": 0.9, "status": "OK"},
                },
            }
        ],
    }


def _model(ctx: Container, audit: dict[str, Any] | None) -> str:
    model_id = uuid.uuid4()
    details: dict[str, Any] = {"threshold": 0.5, "onnx_max_abs_diff": 1e-6}
    if audit is not None:
        details["bias_audit"] = audit
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name=f"fraud-{model_id.hex[:6]}",
                version="1.0",
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                metrics={"auc_roc": 0.97},
                details=details,
            )
        )
    return str(model_id)


def _promote(client: Any, model_id: str, **body: Any) -> Any:
    return client.post(
        f"{API}/{model_id}/promote", json={"stage": "production", **body}
    )


def test_critical_audit_refuses_production_naming_attribute_and_metric(
    client: Any, ctx: Container
) -> None:
    model = _model(ctx, _audit("CRITICAL", "CRITICAL"))
    resp = _promote(client, model, reason="ship it")
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "BIAS_GATE_FAILED"
    assert "gender.demographic_parity_diff" in error["message"]
    assert [d["field"] for d in error["details"]] == [
        "bias_audit.gender.demographic_parity_diff"
    ]
    assert client.get(f"{API}/{model}").json()["data"]["status"] == "TRAINED"


def test_override_needs_a_reason_and_is_recorded(client: Any, ctx: Container) -> None:
    model = _model(ctx, _audit("CRITICAL", "CRITICAL"))
    assert _promote(client, model, override_bias=True).status_code == 422
    assert _promote(client, model, override_bias=True, reason="  ").status_code == 422
    resp = _promote(
        client, model, override_bias=True, reason="legal review 42", actor="ana"
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["status"] == "PRODUCTION"
    transitions = client.get(f"{API}/{model}/transitions").json()["data"]
    promoted = [t for t in transitions if t["action"] == "promote"][-1]
    assert promoted["reason"] == (
        "[bias gate overridden] (gender.demographic_parity_diff): legal review 42"
    )
    with ctx.db.session() as s:
        stored = s.get(MLModel, uuid.UUID(model))
        assert stored is not None
        override = stored.details["bias_override"]
    assert override["reason"] == "legal review 42"
    assert override["critical"] == ["gender.demographic_parity_diff"]


def test_models_without_a_critical_audit_pass(client: Any, ctx: Container) -> None:
    for audit in (None, _audit("WARNING", "WARNING"), _audit("NO_DATA", "OK")):
        model = _model(ctx, audit)
        assert _promote(client, model).status_code == 200


def test_bias_gate_reports_which_gate_decided() -> None:
    critical = MLModel(details={"bias_audit": _audit("CRITICAL", "CRITICAL")})
    result = bias_gate(critical)
    assert (result.passed, result.gate) == (False, "bias")
    assert "gender.demographic_parity_diff" in result.detail
    assert bias_gate(MLModel(details={})).passed
