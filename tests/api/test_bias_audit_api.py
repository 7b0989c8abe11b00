"""Bias audits through the API on both stacks: training audits its test set for the
active attributes and keeps the summary with the model; predictions carry protected
attributes that are logged (never features, never answered) and audited by a job over
a window; the latest audit in the spec's shape, its HTML report; bad input."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from shared.container import Container
from shared.db.models import Prediction
from tests.support.jobs import wait_for_job
from tests.support.serving import API, as_request, generated, serve

HISTORY = 4000
LIVE = 400
LABELLED = 300
SPEC_METRICS = {
    "demographic_parity_diff",
    "equalized_odds_diff",
    "disparate_impact",
    "fpr_parity_diff",
}


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generated(5000)


def _configure(client: Any) -> None:
    for body in (
        {
            "attribute_name": "gender",
            "column_name": "gender",
            "groups": [
                {"name": "male", "values": ["male"]},
                {"name": "female", "values": ["female"]},
            ],
        },
        {
            "attribute_name": "age_group",
            "column_name": "age_group",
            "groups": [{"name": g, "values": [g]} for g in ("18-25", "26-45", "46+")],
        },
        {
            "attribute_name": "ethnicity",
            "column_name": "ethnicity",
            "groups": [{"name": "a", "values": ["a"]}, {"name": "b", "values": ["b"]}],
        },
    ):
        resp = client.post(f"{API}/bias/protected-attributes", json=body)
        assert resp.status_code == 200, resp.text


def _metrics(client: Any, model_id: str, source: str) -> dict[str, Any]:
    resp = client.get(
        f"{API}/bias/metrics", params={"model_id": model_id, "source": source}
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


def _request(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **as_request(row),
        "protected_attributes": {
            "gender": row["gender"],
            "age_group": row["age_group"],
        },
    }


@pytest.mark.slow
def test_training_and_live_predictions_are_audited(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    _configure(client)
    ctx.bias_audits.min_group_count = 10
    # whatever its audit says (checked below), this model is to be served
    model_id = serve(client, transactions.iloc[:HISTORY], override_bias=True)

    # training audited the test set: the summary is kept with the model
    model = client.get(f"{API}/models/{model_id}").json()["data"]
    summary = model["details"]["bias_audit"]
    assert summary["status"] in ("OK", "WARNING", "CRITICAL"), summary
    statuses = {a["attribute"]: a["status"] for a in summary["attributes"]}
    assert statuses["ethnicity"] == "MISSING_COLUMN"
    assert statuses["gender"] in ("OK", "WARNING", "CRITICAL")
    tested = _metrics(client, model_id, "test_set")
    assert tested["audit_id"] == summary["audit_id"]
    assert tested["source"] == "test_set" and tested["model_id"] == model_id
    gender = next(
        a for a in tested["protected_attributes"] if a["attribute"] == "gender"
    )
    assert gender["groups"] == ["male", "female"]
    assert set(gender["metrics"]) == SPEC_METRICS
    assert set(gender["group_breakdown"]) == {"male", "female"}
    assert set(gender["group_breakdown"]["male"]) == {
        "fpr",
        "tpr",
        "selection_rate",
        "count",
    }

    # live traffic with protected attributes: logged, never features, never answered
    rows = transactions.iloc[HISTORY : HISTORY + LIVE].to_dict("records")
    single = client.post(
        f"{API}/predict",
        json={
            "transaction": as_request(rows[0]),
            "protected_attributes": {"gender": rows[0]["gender"]},
        },
    )
    assert single.status_code == 200, single.text
    batch = client.post(
        f"{API}/predict/batch", json={"transactions": [_request(r) for r in rows[1:]]}
    )
    assert batch.status_code == 200, batch.text
    explained = client.post(  # a retry of the first: answered again, not re-logged
        f"{API}/predict/explain",
        json={
            "transaction": as_request(rows[0]),
            "protected_attributes": {"gender": "other"},
        },
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["data"]["replayed"] is True
    for resp in (single, batch, explained):
        assert "protected" not in resp.text and "gender" not in resp.text
    with ctx.db.session() as s:
        logged = list(s.scalars(select(Prediction)))
    assert len(logged) == LIVE
    by_txn = {p.transaction_id: p for p in logged}
    first = by_txn[rows[0]["transaction_id"]]
    assert first.protected_values == {"gender": rows[0]["gender"]}
    assert by_txn[rows[1]["transaction_id"]].protected_values == {
        "gender": rows[1]["gender"],
        "age_group": rows[1]["age_group"],
    }
    features = set(model["details"]["features"])
    assert all(set(p.input_features) == features for p in logged)

    truth = transactions.set_index("transaction_id")["is_fraud"]
    labels = [
        {
            "transaction_id": r["transaction_id"],
            "label": bool(truth[r["transaction_id"]]),
        }
        for r in rows[:LABELLED]
    ]
    resp = client.post(f"{API}/predictions/labels", json={"labels": labels})
    assert resp.status_code == 200 and resp.json()["data"]["updated"] == LABELLED

    resp = client.post(
        f"{API}/bias/audit",
        json={"model_id": model_id, "source": "predictions", "window": "1h"},
    )
    assert resp.status_code == 202, resp.text
    accepted = resp.json()["data"]
    job = wait_for_job(client, f"{API}/jobs/{accepted['job_id']}")
    assert job["status"] == "COMPLETED", job
    assert job["kind"] == "bias_audit" and job["result"]["rows"] == LABELLED

    live = _metrics(client, model_id, "predictions")
    assert live["audit_id"] == accepted["job_id"] == job["result"]["audit_id"]
    by_name = {a["attribute"]: a for a in live["protected_attributes"]}
    assert by_name["ethnicity"]["status"] == "MISSING_COLUMN"
    counts = {g: r["count"] for g, r in by_name["gender"]["group_breakdown"].items()}
    # "unspecified" is in no configured group
    genders = [r["gender"] for r in rows[:LABELLED]]
    assert counts == {g: genders.count(g) for g in ("male", "female")}
    # the one /predict request gave no age group: LABELLED - 1 rows have one
    ages = by_name["age_group"]["group_breakdown"].values()
    assert sum(r["count"] for r in ages) == LABELLED - 1
    latest = client.get(f"{API}/bias/metrics", params={"model_id": model_id})
    assert latest.json()["data"]["audit_id"] == live["audit_id"]

    resp = client.get(f"{API}{live['report_url'].removeprefix('/api/v1')}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "attachment" in resp.headers["content-disposition"]
    assert "<script" not in resp.text and "<svg" in resp.text
    assert "female" in resp.text and "MISSING_COLUMN" in resp.text


def test_bad_bias_requests(client: Any, ctx: Container) -> None:
    unknown = str(uuid.uuid4())
    resp = client.post(f"{API}/bias/audit", json={"model_id": unknown})
    assert resp.status_code == 404, resp.text
    resp = client.post(
        f"{API}/bias/audit", json={"model_id": unknown, "source": "elsewhere"}
    )
    assert resp.status_code == 422
    resp = client.post(
        f"{API}/bias/audit",
        json={"model_id": unknown, "source": "predictions", "window": "2d"},
    )
    assert resp.status_code == 422
    resp = client.get(f"{API}/bias/metrics", params={"model_id": unknown})
    assert resp.status_code == 404
    resp = client.get(f"{API}/bias/metrics", params={"model_id": "nope"})
    assert resp.status_code == 422
    resp = client.get(f"{API}/bias/reports/{unknown}")
    assert resp.status_code == 404
    resp = client.post(
        f"{API}/predict",
        json={
            "transaction": {
                "transaction_id": "t",
                "amount": 1.0,
                "user_id": "u",
                "timestamp": "2026-01-01T00:00:00Z",
            },
            "protected_attributes": ["female"],
        },
    )
    assert resp.status_code == 422
    fields = {d["field"] for d in resp.json()["error"]["details"]}
    assert any("protected_attributes" in f for f in fields)
