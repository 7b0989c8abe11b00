"""Model registry: baselines gate promotion, one production model per name (also under
a race), rollback, recorded transitions, compare, and their errors."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from shared.container import Container
from shared.db.models import MLModel

API = "/api/v1/models"


def _model(
    ctx: Container,
    version: str,
    name: str = "fraud",
    onnx_diff: float = 1e-6,
    **metrics: float,
) -> str:
    values = {
        "precision": 0.9,
        "recall": 0.8,
        "f1_score": 0.85,
        "auc_roc": 0.97,
        "fpr": 0.01,
    }
    values.update(metrics)
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name=name,
                version=version,
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                metrics=values,
                details={"threshold": 0.5, "onnx_max_abs_diff": onnx_diff},
            )
        )
    return str(model_id)


def _promote(client: Any, model_id: str, **body: Any) -> Any:
    return client.post(
        f"{API}/{model_id}/promote", json={"stage": "production", **body}
    )


def _status(client: Any, model_id: str) -> str:
    return str(client.get(f"{API}/{model_id}").json()["data"]["status"])


def test_promote_archives_the_previous_production_model(
    client: Any, ctx: Container
) -> None:
    v1, v2 = _model(ctx, "1.0"), _model(ctx, "2.0")
    assert (
        client.post(f"{API}/{v1}/promote", json={"stage": "staging"}).status_code == 200
    )
    assert _status(client, v1) == "STAGING"
    resp = _promote(client, v1, reason="first model", actor="ana")
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["promoted_at"]
    assert _promote(client, v2, reason="better recall").status_code == 200
    assert (_status(client, v1), _status(client, v2)) == ("ARCHIVED", "PRODUCTION")
    listed = client.get(API, params={"status": "production"}).json()["data"]
    assert [m["id"] for m in listed] == [v2]
    history = client.get(f"{API}/{v2}/transitions").json()["data"]
    assert [(h["model_id"], h["from_status"], h["to_status"]) for h in history] == [
        (v1, "TRAINED", "STAGING"),
        (v1, "STAGING", "PRODUCTION"),
        (v1, "PRODUCTION", "ARCHIVED"),
        (v2, "TRAINED", "PRODUCTION"),
    ]
    assert history[1]["actor"] == "ana" and history[1]["reason"] == "first model"


def test_baselines_gate_promotion_unless_overridden_with_a_reason(
    client: Any, ctx: Container
) -> None:
    model = _model(ctx, "1.0", recall=0.7)
    resp = client.post(
        f"{API}/{model}/baselines",
        json={
            "baselines": [
                {"metric": "recall", "threshold": 0.85, "operator": "gte"},
                {"metric": "fpr", "threshold": 0.05, "operator": "lte"},
            ]
        },
    )
    assert resp.status_code == 201, resp.text
    evaluation = {e["metric"]: e["passed"] for e in resp.json()["data"]["evaluation"]}
    assert evaluation == {"recall": False, "fpr": True}

    refused = _promote(client, model)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "BASELINE_NOT_MET"
    assert [d["field"] for d in error["details"]] == ["metrics.recall"]
    assert _status(client, model) == "TRAINED"

    no_reason = _promote(client, model, override_baselines=True)
    assert no_reason.status_code == 422
    ok = _promote(
        client, model, override_baselines=True, reason="seasonal peak, accepted"
    )
    assert ok.status_code == 200
    last = client.get(f"{API}/{model}/transitions").json()["data"][-1]
    assert last["override_baselines"] is True
    assert last["reason"] == "seasonal peak, accepted"


def test_a_successor_must_meet_the_production_models_baselines(
    client: Any, ctx: Container
) -> None:
    v1, v2 = _model(ctx, "1.0"), _model(ctx, "2.0", auc_roc=0.90)
    assert _promote(client, v1).status_code == 200
    client.post(
        f"{API}/{v1}/baselines",
        json={
            "baselines": [{"metric": "auc_roc", "threshold": 0.95, "operator": "gte"}]
        },
    )
    assert _promote(client, v2).status_code == 409
    assert _status(client, v1) == "PRODUCTION"


def test_onnx_mismatch_blocks_promotion(client: Any, ctx: Container) -> None:
    model = _model(ctx, "1.0", onnx_diff=3e-3)
    resp = _promote(client, model, override_baselines=True, reason="try")
    assert resp.status_code == 409
    assert "ONNX" in resp.json()["error"]["message"]


def test_racing_promotions_leave_exactly_one_production_model(
    client: Any, ctx: Container
) -> None:
    ids = [_model(ctx, f"{i}.0") for i in range(1, 7)]
    codes: list[int] = []
    barrier = threading.Barrier(len(ids))

    def promote(model_id: str) -> None:
        barrier.wait()
        codes.append(_promote(client, model_id).status_code)

    threads = [threading.Thread(target=promote, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) <= {200, 409}
    production = client.get(
        API, params={"status": "PRODUCTION", "name": "fraud"}
    ).json()
    assert production["meta"]["pagination"]["total"] == 1


def test_rollback_restores_the_previous_production_version(
    client: Any, ctx: Container
) -> None:
    v1, v2 = _model(ctx, "1.0"), _model(ctx, "2.0")
    _promote(client, v1)
    no_earlier = client.post(f"{API}/{v1}/rollback", json={"reason": "x"})
    assert no_earlier.status_code == 409
    assert "No earlier production version" in no_earlier.json()["error"]["message"]
    _promote(client, v2)
    resp = client.post(
        f"{API}/{v2}/rollback", json={"reason": "alert storm", "actor": "bo"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["production"]["id"] == v1
    assert (_status(client, v1), _status(client, v2)) == ("PRODUCTION", "ARCHIVED")
    last = client.get(f"{API}/{v1}/transitions").json()["data"][-1]
    assert last["action"] == "rollback" and last["actor"] == "bo"
    assert client.post(f"{API}/{v2}/rollback", json={}).status_code == 409


def test_compare_and_metrics(client: Any, ctx: Container) -> None:
    a = _model(ctx, "1.0", recall=0.7, fpr=0.02)
    b = _model(ctx, "2.0", recall=0.9, fpr=0.03)
    data = client.get(f"{API}/compare", params={"ids": f"{a},{b}"}).json()["data"]
    assert [m["id"] for m in data["models"]] == [a, b]
    assert data["best"]["recall"] == b and data["best"]["fpr"] == a
    assert client.get(f"{API}/compare", params={"ids": a}).status_code == 422
    metrics = client.get(f"{API}/{a}/metrics").json()["data"]
    assert metrics["metrics"]["recall"] == 0.7 and metrics["threshold"] == 0.5


def test_registry_errors(client: Any, ctx: Container) -> None:
    unknown = "0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21"
    assert _promote(client, unknown).status_code == 404
    assert client.get(f"{API}/{unknown}").status_code == 404
    assert client.post(f"{API}/{unknown}/rollback", json={}).status_code == 404
    v1, v2 = _model(ctx, "1.0"), _model(ctx, "2.0")
    _promote(client, v1)
    _promote(client, v2)
    archived = _promote(client, v1)
    assert (
        archived.status_code == 409
        and "ARCHIVED" in archived.json()["error"]["message"]
    )
    bad_stage = client.post(f"{API}/{v2}/promote", json={"stage": "moon"})
    assert bad_stage.status_code == 422
    bad_baseline = client.post(
        f"{API}/{v2}/baselines",
        json={"baselines": [{"metric": "vibes", "threshold": 1, "operator": "gte"}]},
    )
    assert bad_baseline.status_code == 422
    assert bad_baseline.json()["error"]["details"][0]["field"] == "baselines.0.metric"
