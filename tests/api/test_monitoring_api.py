"""Monitoring through the API on both stacks: predictions scored through /predict are
audited by a drift job (baseline built from the feature set on the first audit),
read back in the spec's shape, per feature, as an HTML report and as performance over
time; the mirrored feature log gives the same audit; alerts list; bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from shared.container import Container
from shared.db.models import MLModel
from shared.services.drift_baselines import baseline_path
from tests.support.jobs import wait_for_job
from tests.support.serving import API, as_request, generated, serve

HISTORY = 4000
LIVE = 600
LABELLED = 200


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generated(5000)


def _audit(client: Any, model_id: str, **body: Any) -> dict[str, Any]:
    resp = client.post(
        f"{API}/monitoring/drift/compute", json={"model_id": model_id, **body}
    )
    assert resp.status_code == 202, resp.text
    accepted = resp.json()["data"]
    assert accepted["status"] == "PENDING"
    job = wait_for_job(client, f"{API}/monitoring/drift/jobs/{accepted['job_id']}")
    assert job["status"] == "COMPLETED", job
    generic = client.get(f"{API}/jobs/{accepted['job_id']}").json()["data"]
    assert generic["kind"] == "drift_audit"
    return job


def _drift(client: Any, model_id: str, window: str = "1h") -> dict[str, Any]:
    resp = client.get(
        f"{API}/monitoring/drift", params={"model_id": model_id, "window": window}
    )
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


@pytest.mark.slow
def test_predictions_scored_live_are_audited(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    model_id = serve(client, transactions.iloc[:HISTORY])
    live = [
        as_request(r)
        for r in transactions.iloc[HISTORY : HISTORY + LIVE].to_dict("records")
    ]
    resp = client.post(f"{API}/predict/batch", json={"transactions": live})
    assert resp.status_code == 200, resp.text
    truth = transactions.set_index("transaction_id")["is_fraud"]
    labels = [
        {
            "transaction_id": t["transaction_id"],
            "label": bool(truth[t["transaction_id"]]),
        }
        for t in live[:LABELLED]
    ]
    resp = client.post(f"{API}/predictions/labels", json={"labels": labels})
    assert resp.status_code == 200 and resp.json()["data"]["updated"] == LABELLED

    # training stored the baseline; without it the first audit builds one from the
    # model's feature set and stores it
    assert ctx.blobs.exists(baseline_path(model_id))
    ctx.blobs.delete_prefix(baseline_path(model_id))
    job = _audit(client, model_id, window="1h")
    assert job["result"]["rows"] == LIVE
    assert ctx.blobs.exists(baseline_path(model_id))  # built from the feature set

    drift = _drift(client, model_id)
    assert (drift["model_id"], drift["window"], drift["row_count"]) == (
        model_id,
        "1h",
        LIVE,
    )
    assert drift["status"] in ("OK", "WARNING", "CRITICAL")
    data = drift["data_drift"]
    assert data["rows"] == LIVE and data["overall_psi"] is not None
    features = {f["name"]: f for f in data["features"]}
    model = client.get(f"{API}/models/{model_id}").json()["data"]
    assert set(features) == set(model["details"]["features"])
    assert features["amount"]["psi"] is not None
    assert features["amount"]["ks_statistic"] is not None
    concept = drift["concept_drift"]
    assert concept["labelled_count"] == LABELLED
    assert concept["baseline_precision"] == model["metrics"]["precision"]
    assert concept["estimated"]["count"] == LIVE
    assert concept["realised"]["count"] == LABELLED

    resp = client.get(
        f"{API}/monitoring/drift/features",
        params={"model_id": model_id, "window": "1h", "feature": "amount"},
    )
    assert resp.status_code == 200, resp.text
    (amount,) = resp.json()["data"]["features"]
    assert len(amount["bins"]) == len(amount["baseline_counts"])
    assert sum(amount["current_counts"]) == LIVE
    assert [p["audit_id"] for p in amount["history"]] == [drift["audit_id"]]
    resp = client.get(
        f"{API}/monitoring/drift/features",
        params={"model_id": model_id, "window": "1h", "feature": "nope"},
    )
    assert resp.status_code == 404 and "nope" in resp.json()["error"]["message"]

    resp = client.get(f"{API}/monitoring/drift/reports/{drift['audit_id']}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "attachment" in resp.headers["content-disposition"]
    assert "<script" not in resp.text and "amount" in resp.text

    resp = client.get(
        f"{API}/monitoring/performance",
        params={"model_id": model_id, "window": "24h", "granularity": "hour"},
    )
    assert resp.status_code == 200, resp.text
    perf = resp.json()["data"]
    assert sum(b["volume"] for b in perf["buckets"]) == LIVE
    assert sum(b["labelled_count"] for b in perf["buckets"]) == LABELLED
    busy = [b for b in perf["buckets"] if b["volume"]]
    assert all(b["latency_p99_ms"] is not None for b in busy)
    assert all(b["estimated"]["precision"] is not None or b["volume"] for b in busy)

    # the same window read from the mirrored Parquet segments: the same audit (the
    # export leaves the last minutes to the table: its clock is moved past them)
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert ctx.feature_log.export(later) == LIVE
    _audit(client, model_id, window="1h")
    again = _drift(client, model_id)
    assert again["audit_id"] != drift["audit_id"]
    assert again["data_drift"] == data
    assert again["concept_drift"]["labelled_count"] == LABELLED

    resp = client.get(f"{API}/alerts", params={"type": "DRIFT", "page_size": 5})
    assert resp.status_code == 200
    assert resp.json()["meta"]["pagination"]["page_size"] == 5
    for alert in resp.json()["data"]:
        one = client.get(f"{API}/alerts/{alert['id']}").json()["data"]
        assert one == alert and one["model_id"] == model_id


def _bare_model(ctx: Container, with_baseline: bool) -> str:
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name=f"m-{model_id.hex[:8]}",
                version="1.0",
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                details={"features": ["amount", "hour"], "threshold": 0.5},
                metrics={"precision": 0.8, "recall": 0.6, "auc_roc": 0.9},
            )
        )
    if with_baseline:
        ctx.drift_baselines.store(
            model_id, [[10.0, 1.0], [20.0, 2.0], [30.0, 3.0]], ["amount", "hour"]
        )
    return str(model_id)


def test_a_model_without_predictions_is_no_data(
    client: Any, ctx: Container, runtime: Any
) -> None:
    model_id = _bare_model(ctx, with_baseline=True)
    job = _audit(client, model_id, window="7d")
    assert job["result"]["drift_status"] == "NO_DATA"
    drift = _drift(client, model_id, "7d")
    assert (drift["status"], drift["row_count"]) == ("NO_DATA", 0)
    assert drift["data_drift"]["status"] == "NO_DATA"


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["error"]
    return error


def test_bad_input(client: Any, ctx: Container) -> None:
    compute = f"{API}/monitoring/drift/compute"
    known = _bare_model(ctx, with_baseline=True)
    bare = _bare_model(ctx, with_baseline=False)

    def fields(error: dict[str, Any]) -> set[str]:
        return {d["field"] for d in error["details"]}

    _error(client.post(compute, json={"model_id": str(uuid.uuid4())}), 404)
    _error(client.post(compute, json={"model_id": "nope"}), 404)
    error = _error(client.post(compute, json={"model_id": bare}), 409)
    assert bare in error["message"]
    error = _error(client.post(compute, json={"model_id": known, "window": "2d"}), 422)
    assert fields(error) == {"window"}
    body = {
        "model_id": known,
        "window_start": "2026-12-01T00:00:00Z",
        "window_end": "2026-11-30T00:00:00Z",
    }
    assert fields(_error(client.post(compute, json=body), 422)) == {"window_end"}
    body["window_start"] = "2026-08-01T00:00:00Z"
    body["window_end"] = "2026-12-01T00:00:00Z"
    error = _error(client.post(compute, json=body), 422)
    assert fields(error) == {"window_start"} and "90 days" in error["message"]
    error = _error(client.post(compute, json={"model_id": known, "extra": 1}), 422)
    assert fields(error) == {"extra"}

    drift = f"{API}/monitoring/drift"
    error = _error(client.get(drift, params={"model_id": "x"}), 422)
    assert fields(error) == {"model_id"}
    _error(client.get(drift, params={"model_id": str(uuid.uuid4())}), 404)
    error = _error(client.get(drift, params={"model_id": known, "window": "3d"}), 422)
    assert fields(error) == {"window"}
    error = _error(client.get(drift, params={"model_id": known}), 404)
    assert "POST /monitoring/drift/compute" in error["message"]
    _error(client.get(f"{drift}/reports/nope"), 404)
    _error(client.get(f"{drift}/reports/{uuid.uuid4()}"), 404)
    _error(client.get(f"{drift}/jobs/{uuid.uuid4()}"), 404)
    perf = f"{API}/monitoring/performance"
    error = _error(
        client.get(perf, params={"model_id": known, "granularity": "week"}), 422
    )
    assert fields(error) == {"granularity"}
    _error(client.get(perf, params={"model_id": str(uuid.uuid4())}), 404)

    assert fields(_error(client.get(f"{API}/alerts?status=OPEN"), 422)) == {"status"}
    assert fields(_error(client.get(f"{API}/alerts?page=0"), 422)) == {"page"}
    _error(client.get(f"{API}/alerts/{uuid.uuid4()}"), 404)
    _error(client.get(f"{API}/alerts/nope"), 404)
    resp = client.get(f"{API}/alerts", params={"model_id": known})
    assert resp.status_code == 200 and resp.json()["data"] == []
