"""Training end to end through the API and the local Durable engine: a feature set, a
training job per algorithm, progress, the registered model with ONNX parity, time-based
splits, cancellation, and bad input."""

from __future__ import annotations

import io
import time
from typing import Any

import pandas as pd
import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from shared.container import Container
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API
from tests.support.serving import PARAMS as SMALL


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(
            n_rows=6000,
            n_users=500,
            n_merchants=60,
            days=30,
            seed=5,
            target_fraud_rate=0.03,
        )
    )


def _feature_set(client: Any, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    resp = upload(client, name="tx", content=buf.getvalue(), filename="tx.parquet")
    dataset_id = resp.json()["data"]["id"]
    job = client.post(f"{API}/features/compute", json={"dataset_id": dataset_id}).json()
    done = wait_for_job(client, f"{API}/features/jobs/{job['data']['job_id']}")
    assert done["status"] == "COMPLETED", done
    return str(done["feature_set_id"])


def _train(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(f"{API}/training/jobs", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json()["data"]["status"] == "QUEUED"
    return wait_for_job(
        client, f"{API}/training/jobs/{resp.json()['data']['job_id']}", 120
    )


def test_algorithms_catalog_describes_every_hyperparameter(client: Any) -> None:
    data = client.get(f"{API}/training/algorithms").json()["data"]
    assert {a["name"] for a in data} == set(SMALL)
    for algorithm in data:
        for hp in algorithm["hyperparameters"]:
            assert {"name", "type", "default", "description"} <= set(hp), hp


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", list(SMALL))
def test_train_each_algorithm_and_register_the_model(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    algorithm: str,
) -> None:
    fs_id = _feature_set(client, transactions)
    job = _train(
        client,
        {
            "name": f"fraud_{algorithm}",
            "feature_set_id": fs_id,
            "algorithm": algorithm,
            "hyperparameters": SMALL[algorithm],
            "train_test_split": 0.75,
        },
    )
    assert job["status"] == "COMPLETED", job
    assert job["progress"] == 1.0 and job["model_id"]
    assert job["total_epochs"] and job["current_epoch"] == job["total_epochs"]
    model = client.get(f"{API}/models/{job['model_id']}").json()["data"]
    assert model["status"] == "TRAINED" and model["version"] == "1.0"
    metrics = model["metrics"]
    for name in ("precision", "recall", "f1_score", "auc_roc", "auc_pr", "fpr"):
        assert 0.0 <= metrics[name] <= 1.0, name
    assert set(metrics["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    if algorithm != "isolation_forest":
        assert metrics["auc_roc"] > 0.7
    assert model["onnx_max_abs_diff"] <= 1e-4
    prefix = model["storage_path"]
    assert ctx.blobs.exists(prefix + "model.onnx")
    assert ctx.blobs.exists(prefix + "model.native")
    assert ctx.blobs.exists(prefix + "metadata.json")
    curves = client.get(f"{API}/models/{job['model_id']}/metrics").json()["data"]
    assert len(curves["roc_curve"]["fpr"]) > 2 and curves["feature_importance"]
    # the test rows are kept: the evaluation answers, and its means are model metrics
    assert ctx.blobs.exists(prefix + "evaluation.parquet")
    # the drift baseline is kept with the model, so audits outlive the feature set
    assert ctx.blobs.exists(prefix + "drift_baseline.json")
    assert 0.0 <= metrics["precision_at_100"] <= 1.0
    assert 0.0 <= metrics["user_precision_at_100"] <= 1.0
    evaluation = client.get(f"{API}/models/{job['model_id']}/evaluation")
    assert evaluation.status_code == 200, evaluation.text
    report = evaluation.json()["data"]
    assert report["threshold_source"] == "validation"
    assert report["threshold"] == pytest.approx(model["threshold"])


@pytest.mark.slow
def test_time_split_and_cost_threshold(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    fs_id = _feature_set(client, transactions)
    base = {
        "feature_set_id": fs_id,
        "algorithm": "xgboost",
        "hyperparameters": SMALL["xgboost"],
        "split": {
            "type": "time",
            "train_start": "2026-01-01",
            "train_end": "2026-01-20",
            "gap": "3d",
            "test_start": "2026-01-24",
            "test_end": "2026-01-31",
        },
    }
    f1 = _train(client, {**base, "name": "m"})
    costly = _train(client, {**base, "name": "m", "cost_ratio": 50})
    assert f1["status"] == costly["status"] == "COMPLETED", (f1, costly)
    t_f1 = client.get(f"{API}/models/{f1['model_id']}").json()["data"]["threshold"]
    t_cost = client.get(f"{API}/models/{costly['model_id']}").json()["data"][
        "threshold"
    ]
    assert t_cost <= t_f1  # a missed fraud costs 50 false alarms: flag more
    versions = client.get(f"{API}/models", params={"name": "m"}).json()["data"]
    assert sorted(v["version"] for v in versions) == ["1.0", "2.0"]


@pytest.mark.slow
def test_cancel_a_running_job(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    fs_id = _feature_set(client, transactions)
    resp = client.post(
        f"{API}/training/jobs",
        json={
            "name": "slow",
            "feature_set_id": fs_id,
            "algorithm": "neural_net",
            "hyperparameters": {"max_iter": 1000, "hidden_layer_sizes": "128,64,32"},
        },
    )
    job_id = resp.json()["data"]["job_id"]
    url = f"{API}/training/jobs/{job_id}"
    deadline = time.monotonic() + 60
    while client.get(url).json()["data"]["status"] != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.post(f"{url}/cancel").status_code == 200
    final = wait_for_job(client, url, 30)
    assert final["status"] == "CANCELLED"
    assert final["model_id"] is None


def test_bad_training_requests(
    client: Any, ctx: Container, transactions: pd.DataFrame
) -> None:
    unknown = "0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21"
    body = {"name": "x", "feature_set_id": unknown, "algorithm": "xgboost"}
    assert client.post(f"{API}/training/jobs", json=body).status_code == 404
    fs_id = _feature_set_no_runtime(client, ctx, transactions)
    cases = [
        ({"algorithm": "magic"}, "algorithm"),
        ({"hyperparameters": {"max_depth": 500}}, "hyperparameters.max_depth"),
        ({"hyperparameters": {"no_such": 1}}, "hyperparameters.no_such"),
        ({"target_column": "label"}, "target_column"),
        ({"train_test_split": 1.5}, "train_test_split"),
    ]
    for extra, field in cases:
        resp = client.post(
            f"{API}/training/jobs", json={**body, "feature_set_id": fs_id, **extra}
        )
        assert resp.status_code == 422, (extra, resp.text)
        assert field in [d["field"] for d in resp.json()["error"]["details"]], resp.text
    assert client.get(f"{API}/training/jobs").json()["meta"]["pagination"]["total"] == 0


def _feature_set_no_runtime(client: Any, ctx: Container, df: pd.DataFrame) -> str:
    from local.runtime import LocalRuntime

    rt = LocalRuntime(ctx, poll_interval=0.2)
    rt.start()
    try:
        return _feature_set(client, df.head(1500))
    finally:
        rt.stop()


def test_one_class_label_is_refused_before_any_job(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    fs_id = _feature_set(client, transactions.assign(is_fraud=0))
    resp = client.post(
        f"{API}/training/jobs",
        json={"name": "none", "feature_set_id": fs_id, "algorithm": "xgboost"},
    )
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert "one class" in error["message"]
    assert error["details"][0]["field"] == "target_column"
    assert client.get(f"{API}/training/jobs").json()["meta"]["pagination"]["total"] == 0


def test_one_class_in_the_training_window_fails_the_job(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    late_fraud_only = transactions.assign(
        is_fraud=transactions["is_fraud"].where(
            transactions["timestamp"] >= pd.Timestamp("2026-01-24", tz="UTC"), 0
        )
    )
    fs_id = _feature_set(client, late_fraud_only)
    job = _train(
        client,
        {
            "name": "early",
            "feature_set_id": fs_id,
            "algorithm": "xgboost",
            "hyperparameters": SMALL["xgboost"],
            "split": {
                "type": "time",
                "train_start": "2026-01-01",
                "train_end": "2026-01-20",
                "gap": "3d",
                "test_start": "2026-01-24",
                "test_end": "2026-01-31",
            },
        },
    )
    assert job["status"] == "FAILED"
    assert "class" in job["error_message"]
    assert job["model_id"] is None


@pytest.mark.slow
def test_promotion_backfills_the_online_state(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    from shared.services.online_features import OnlineFeatureStore

    fs_id = _feature_set(client, transactions)
    job = _train(
        client,
        {
            "name": "prod",
            "feature_set_id": fs_id,
            "algorithm": "xgboost",
            "hyperparameters": SMALL["xgboost"],
        },
    )
    resp = client.post(
        f"{API}/models/{job['model_id']}/promote",
        json={"stage": "production", "reason": "first model"},
    )
    assert resp.status_code == 200, resp.text
    backfill_id = resp.json()["data"]["online_backfill_job_id"]
    done = wait_for_job(client, f"{API}/jobs/{backfill_id}")
    assert done["status"] == "COMPLETED", done
    assert done["result"]["rows"] == len(transactions)
    fs = ctx.features.get_row(fs_id)
    store = OnlineFeatureStore.for_feature_config(ctx.db, fs.feature_config)
    user = ("user", str(transactions["user_id"].iloc[-1]))
    assert store.states([user])[user]["ts"], "the user's history is in the online state"


def _training_row(ctx: Container, status: str) -> str:
    """A training job as the service records it, without a runtime to start it."""
    import uuid

    from shared.db.models import TrainingJob

    job_id = uuid.uuid4()
    with ctx.db.session(write=True) as s:
        s.add(
            TrainingJob(
                id=job_id,
                name="fraud",
                algorithm="xgboost",
                status=status,
                input={"job_id": str(job_id)},
                config={"model_id": str(uuid.uuid4())},
            )
        )
    return str(job_id)


def test_generic_job_endpoints_cover_training_jobs(client: Any, ctx: Container) -> None:
    """A training job is a job: /jobs/{id} reports it (PENDING, the state every job
    starts in), /training/jobs/{id} in the spec's training shape (QUEUED), and the
    generic cancel ends it."""
    job_id = _training_row(ctx, "PENDING")
    generic = client.get(f"{API}/jobs/{job_id}")
    assert generic.status_code == 200, generic.text
    assert generic.json()["data"]["kind"] == "training"
    assert generic.json()["data"]["status"] == "PENDING"
    training = client.get(f"{API}/training/jobs/{job_id}").json()["data"]
    assert (training["status"], training["name"]) == ("QUEUED", "fraud")
    listed = client.get(f"{API}/jobs", params={"kind": "training"}).json()["data"]
    assert [j["job_id"] for j in listed] == [job_id]
    queued = client.get(f"{API}/training/jobs", params={"status": "QUEUED"})
    assert [j["job_id"] for j in queued.json()["data"]] == [job_id]

    cancelled = client.post(f"{API}/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "CANCELLED"
    assert client.get(f"{API}/training/jobs/{job_id}").json()["data"]["status"] == (
        "CANCELLED"
    )
    assert client.post(f"{API}/jobs/{job_id}/cancel").status_code == 409


def test_generic_cancel_of_a_running_training_job_asks_it_to_stop(
    client: Any, ctx: Container
) -> None:
    job_id = _training_row(ctx, "RUNNING")
    resp = client.post(f"{API}/jobs/{job_id}/cancel")
    assert resp.json()["data"]["status"] == "CANCELLING"
    assert client.get(f"{API}/training/jobs/{job_id}").json()["data"]["status"] == (
        "CANCELLING"
    )
    # a feature job's route does not answer for a training job
    assert client.get(f"{API}/features/jobs/{job_id}").status_code == 404
