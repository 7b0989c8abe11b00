"""Feature computation end to end: upload, POST /features/compute, the orchestration on
the local Durable engine, the stored feature set, its preview and its errors."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select

from ml.datagen import GeneratorConfig, generate_transactions
from shared.container import Container
from shared.db.models import FeatureSet, Job
from tests.support.data import upload
from tests.support.jobs import wait_for_job

API = "/api/v1"


def _parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(n_rows=3000, n_users=300, n_merchants=40, days=20, seed=7)
    )


def _dataset(client: Any, df: pd.DataFrame, name: str = "tx") -> str:
    resp = upload(client, name=name, content=_parquet(df), filename="tx.parquet")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["data"]["id"])


def _compute(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(f"{API}/features/compute", json=body)
    assert resp.status_code == 202, resp.text
    data = resp.json()["data"]
    assert data["status"] == "PENDING" and data["estimated_time_seconds"] >= 1
    return wait_for_job(client, f"{API}/features/jobs/{data['job_id']}")


def test_compute_features_end_to_end(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    dataset_id = _dataset(client, transactions)
    job = _compute(
        client,
        {"dataset_id": dataset_id, "output_name": "fraud_features_v1"},
    )
    assert job["status"] == "COMPLETED", job
    assert job["progress"] == 1.0
    fs_id = job["feature_set_id"]
    assert fs_id and job["result"]["row_count"] == 3000

    fs = client.get(f"{API}/features/sets/{fs_id}").json()["data"]
    assert fs["status"] == "READY"
    assert fs["dataset_id"] == dataset_id and fs["name"] == "fraud_features_v1"
    assert fs["row_count"] == 3000
    assert fs["feature_count"] == len(fs["features"]) > 40
    groups = {f["group"] for f in fs["features"]}
    assert groups == {"transaction", "behavioral", "temporal", "aggregation"}
    assert all(f["name"] and f["dtype"] and f["description"] for f in fs["features"])
    for feature in fs["features"]:
        stats = fs["statistics"][feature["name"]]
        assert stats, feature["name"]
    assert fs["feature_config"]["dropped"] == []
    # the stored configuration comes back whole, the card-data windows included
    assert fs["feature_config"]["user_fraud_rate_windows"] == ["1d", "7d", "30d"]
    assert fs["feature_config"]["amount_ratio_windows"] == ["24h", "7d", "30d"]
    assert {"is_fraud", "timestamp", "gender", "age_group"} <= set(
        fs["feature_config"]["carried_columns"]
    )
    assert ctx.blobs.exists(fs["storage_path"])

    preview = client.get(
        f"{API}/features/sets/{fs_id}/preview", params={"rows": 5}
    ).json()
    rows = preview["data"]["rows"]
    assert len(rows) == 5 and all(r["transaction_id"] for r in rows)
    assert {f["name"] for f in fs["features"]} <= set(rows[0])

    listed = client.get(f"{API}/features/sets").json()
    assert [s["id"] for s in listed["data"]] == [fs_id]
    assert listed["meta"]["pagination"]["total"] == 1
    assert (
        client.get(f"{API}/jobs/{job['job_id']}").json()["data"]["status"]
        == "COMPLETED"
    )


def test_column_mapping_and_missing_optional_columns(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    renamed = transactions[
        ["transaction_id", "user_id", "amount", "timestamp", "is_fraud"]
    ]
    renamed = renamed.rename(
        columns={
            "user_id": "customer_id",
            "timestamp": "tx_datetime",
            "amount": "tx_amount",
        }
    )
    dataset_id = _dataset(client, renamed, name="renamed")
    job = _compute(
        client,
        {
            "dataset_id": dataset_id,
            "feature_groups": ["transaction", "behavioral", "aggregation"],
            "column_mapping": {
                "user_id": "customer_id",
                "timestamp": "tx_datetime",
                "amount": "tx_amount",
            },
        },
    )
    assert job["status"] == "COMPLETED", job
    fs = client.get(f"{API}/features/sets/{job['feature_set_id']}").json()["data"]
    dropped = fs["feature_config"]["dropped"]
    assert dropped, "device/merchant features must be dropped without those columns"
    assert all(d["reason"] for d in dropped)
    names = {f["name"] for f in fs["features"]}
    assert not names & {d["feature"] for d in dropped}
    assert not any(f["group"] == "temporal" for f in fs["features"])


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"dataset_id": "0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21"}, 404, None),
        ({"feature_groups": ["transaction", "astrology"]}, 422, "feature_groups"),
        (
            {"column_mapping": {"user_id": "no_such_column"}},
            422,
            "column_mapping.user_id",
        ),
        ({"column_mapping": {"shoe_size": "amount"}}, 422, "column_mapping.shoe_size"),
        ({"config": {"windows": ["1 hour"]}}, 422, "config.windows"),
        ({"unexpected": 1}, 422, "unexpected"),
    ],
)
def test_bad_requests_are_refused_before_any_job(
    client: Any,
    ctx: Container,
    transactions: pd.DataFrame,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    dataset_id = _dataset(client, transactions.head(50))
    resp = client.post(
        f"{API}/features/compute", json={"dataset_id": dataset_id, **body}
    )
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    if field:
        assert field in [d["field"] for d in error["details"]], error
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0


def test_missing_required_role_is_422(client: Any, transactions: pd.DataFrame) -> None:
    dataset_id = _dataset(client, transactions.drop(columns=["timestamp"]).head(50))
    resp = client.post(f"{API}/features/compute", json={"dataset_id": dataset_id})
    assert resp.status_code == 422
    fields = [d["field"] for d in resp.json()["error"]["details"]]
    assert fields == ["column_mapping.timestamp"]


@pytest.mark.parametrize(
    ("column", "value", "needle"),
    [("amount", -5.0, "amount"), ("timestamp", "not a time", "timestamp")],
)
def test_bad_data_fails_the_job_and_writes_nothing(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    column: str,
    value: Any,
    needle: str,
) -> None:
    bad = transactions.head(200).copy()
    if column == "timestamp":
        bad["timestamp"] = bad["timestamp"].astype(str)
    bad.loc[bad.index[17], column] = value
    dataset_id = _dataset(client, bad)
    job = _compute(client, {"dataset_id": dataset_id})
    assert job["status"] == "FAILED"
    assert needle in job["error_message"]
    assert job["feature_set_id"] is None
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(FeatureSet)) == 0
    assert ctx.blobs.list("features/") == []


def test_unknown_job_and_set_are_404(client: Any) -> None:
    unknown = "0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21"
    for url in (
        f"{API}/features/jobs/{unknown}",
        f"{API}/features/sets/{unknown}",
        f"{API}/features/sets/{unknown}/preview",
        f"{API}/jobs/{unknown}",
        f"{API}/jobs/not-a-uuid",
    ):
        assert client.get(url).status_code == 404, url


def test_restart_fails_jobs_that_cannot_resume(ctx: Container) -> None:
    """A job left RUNNING by a dead process, with no orchestration to resume, ends FAILED
    with the reason when the local runtime starts."""
    import uuid

    from local.runtime import LocalRuntime
    from shared.db.models import TrainingJob

    jobs = ctx.jobs
    job = jobs.create("features", {"job_id": "x"})
    jobs.start(job.id)
    training_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            TrainingJob(id=training_id, name="t", algorithm="xgboost", status="RUNNING")
        )
    rt = LocalRuntime(ctx, poll_interval=0.2)
    try:
        rt.start()
    finally:
        rt.stop()
    after = jobs.get(job.id)
    assert after["status"] == "FAILED"
    assert "could not be resumed" in after["error_message"]
    training = ctx.training.get(str(training_id))
    assert training["status"] == "FAILED"
    assert "could not be resumed" in training["error_message"]


def test_cancel_a_pending_job(client: Any, ctx: Container) -> None:

    job = ctx.jobs.create("features", {})
    resp = client.post(f"{API}/jobs/{job.id}/cancel")
    assert resp.status_code == 200
    assert resp.json()["data"]["status"] == "CANCELLED"
    again = client.post(f"{API}/jobs/{job.id}/cancel")
    assert again.status_code == 409


def test_transient_activity_failure_is_retried(
    client: Any,
    runtime: Any,
    transactions: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.services.features import FeatureService

    real = FeatureService._compute
    calls: list[int] = []

    def flaky(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("blob storage timed out")
        return real(self, *args)

    monkeypatch.setattr(FeatureService, "_compute", flaky)
    job = _compute(client, {"dataset_id": _dataset(client, transactions.head(500))})
    assert job["status"] == "COMPLETED", job
    assert len(calls) == 2


@pytest.mark.slow
def test_exhausted_retries_fail_the_job_with_the_reason(
    client: Any,
    ctx: Container,
    runtime: Any,
    transactions: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.services.features import FeatureService

    def broken(self: Any, *args: Any) -> Any:
        raise ConnectionError("blob storage is down")

    monkeypatch.setattr(FeatureService, "_compute", broken)
    job = _compute(client, {"dataset_id": _dataset(client, transactions.head(300))})
    assert job["status"] == "FAILED"
    assert "blob storage is down" in job["error_message"]
    assert ctx.blobs.list("features/") == []


def test_restart_in_the_middle_resumes_the_orchestration(
    client: Any,
    ctx: Container,
    transactions: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The runtime dies while the activity runs; a new runtime on the same database
    resumes from the recorded history, runs the activity again and completes the job.
    The first run, finishing late, must not undo the second's result."""
    import threading

    from local.runtime import LocalRuntime
    from shared.services.features import FeatureService

    real = FeatureService._compute
    first_running, release = threading.Event(), threading.Event()
    first_done = threading.Event()
    calls: list[int] = []

    def slow_first(self: Any, *args: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            return real(self, *args)
        first_running.set()
        release.wait(30)
        try:
            return real(self, *args)
        finally:
            first_done.set()

    monkeypatch.setattr(FeatureService, "_compute", slow_first)
    dataset_id = _dataset(client, transactions.head(800))
    first = LocalRuntime(ctx, poll_interval=0.2)
    first.start()
    job_id = client.post(
        f"{API}/features/compute", json={"dataset_id": dataset_id}
    ).json()["data"]["job_id"]
    assert first_running.wait(30)
    first.stop()  # the process "dies" with the activity in flight

    second = LocalRuntime(ctx, poll_interval=0.2)
    try:
        assert job_id in second.start()
        job = wait_for_job(client, f"{API}/features/jobs/{job_id}")
    finally:
        release.set()
        second.stop()
    assert job["status"] == "COMPLETED", job
    assert len(calls) == 2
    fs_id = job["feature_set_id"]
    assert first_done.wait(30)  # the released first run has made its late write
    assert ctx.blobs.exists(f"features/{fs_id}/data.parquet")
    assert client.get(f"{API}/features/sets/{fs_id}").status_code == 200
