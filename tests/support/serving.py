"""A model in production, reached the way users get there: upload, features, training,
promotion (which backfills the online state), all through the API."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from ml.datagen import GeneratorConfig, generate_transactions
from tests.support.data import upload
from tests.support.jobs import wait_for_job

API = "/api/v1"
PARAMS = {
    "xgboost": {"n_estimators": 30, "max_depth": 4},
    "lightgbm": {"n_estimators": 30, "num_leaves": 15},
    "isolation_forest": {"n_estimators": 50},
    "neural_net": {"max_iter": 5, "hidden_layer_sizes": "32"},
}


def generated(n_rows: int = 5000, seed: int = 5) -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(
            n_rows=n_rows,
            n_users=400,
            n_merchants=50,
            days=30,
            seed=seed,
            target_fraud_rate=0.03,
        )
    )


def feature_set(client: Any, history: pd.DataFrame) -> str:
    buf = io.BytesIO()
    history.to_parquet(buf, index=False)
    resp = upload(client, name="tx", content=buf.getvalue(), filename="tx.parquet")
    assert resp.status_code == 201, resp.text
    body = {"dataset_id": resp.json()["data"]["id"]}
    job = client.post(f"{API}/features/compute", json=body).json()["data"]
    done = wait_for_job(client, f"{API}/features/jobs/{job['job_id']}")
    assert done["status"] == "COMPLETED", done
    return str(done["feature_set_id"])


def train(
    client: Any, fs_id: str, algorithm: str = "xgboost", name: str = "fraud"
) -> str:
    body = {
        "name": name,
        "feature_set_id": fs_id,
        "algorithm": algorithm,
        "hyperparameters": PARAMS[algorithm],
        "split": {"gap": "1d"},  # a few weeks of data: keep rows to fit on
    }
    resp = client.post(f"{API}/training/jobs", json=body)
    assert resp.status_code == 202, resp.text
    url = f"{API}/training/jobs/{resp.json()['data']['job_id']}"
    job = wait_for_job(client, url, 120)
    assert job["status"] == "COMPLETED", job
    return str(job["model_id"])


def promote(
    client: Any, model_id: str, online_state: str = "keep", override_bias: bool = False
) -> dict[str, Any]:
    """Promote to production and wait for the online backfill (its job under
    ``backfill``); ``override_bias`` passes a CRITICAL training-time bias audit."""
    body = {"stage": "production", "reason": "test", "online_state": online_state}
    if override_bias:
        body["override_bias"] = True
    resp = client.post(f"{API}/models/{model_id}/promote", json=body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    backfill = wait_for_job(client, f"{API}/jobs/{data['online_backfill_job_id']}")
    assert backfill["status"] == "COMPLETED", backfill
    return {**data, "backfill": backfill}


def serve(
    client: Any,
    history: pd.DataFrame,
    algorithm: str = "xgboost",
    override_bias: bool = False,
) -> str:
    """Train on ``history`` and put the model in production; returns its id."""
    model_id = train(client, feature_set(client, history), algorithm)
    promote(client, model_id, override_bias=override_bias)
    return model_id


def as_request(row: dict[str, Any]) -> dict[str, Any]:
    """A generated row as a checkout would send it (no label, ISO timestamp)."""
    txn = {k: v for k, v in row.items() if k not in ("is_fraud", "gender", "age_group")}
    txn["timestamp"] = pd.Timestamp(txn["timestamp"]).isoformat()
    return {k: v for k, v in txn.items() if v is not None and v == v}
