"""Every split through the API, on datasets uploaded as CSV and as Parquet, with
timestamps with and without a zone: the feature file keeps each upload's own timestamp
unit, and the job must read any of them."""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd
import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API
from tests.support.serving import PARAMS as SMALL

WINDOWS = {
    "type": "time",
    "train_start": "2026-01-01",
    "train_end": "2026-01-20",
    "gap": "3d",
    "test_start": "2026-01-24",
    "test_end": "2026-01-31",
}


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(
            n_rows=4000,
            n_users=300,
            n_merchants=40,
            days=30,
            seed=11,
            target_fraud_rate=0.04,
        )
    )


def _file(df: pd.DataFrame, fmt: str, zoned: bool) -> tuple[bytes, str, str]:
    if not zoned:
        df = df.assign(timestamp=df["timestamp"].dt.tz_localize(None))
    if fmt == "csv":
        return df.to_csv(index=False).encode(), "tx.csv", "text/csv"
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue(), "tx.parquet", "application/octet-stream"


def _feature_set(client: Any, df: pd.DataFrame, fmt: str, zoned: bool) -> str:
    content, filename, content_type = _file(df, fmt, zoned)
    resp = upload(client, content=content, filename=filename, content_type=content_type)
    assert resp.status_code == 201, resp.text
    body = {"dataset_id": resp.json()["data"]["id"], "config": {"label_delay": "3d"}}
    job = client.post(f"{API}/features/compute", json=body).json()["data"]
    done = wait_for_job(client, f"{API}/features/jobs/{job['job_id']}")
    assert done["status"] == "COMPLETED", done
    return str(done["feature_set_id"])


def _train(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(f"{API}/training/jobs", json=body)
    assert resp.status_code == 202, resp.text
    url = f"{API}/training/jobs/{resp.json()['data']['job_id']}"
    return wait_for_job(client, url, 120)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "zoned"),
    [("csv", True), ("csv", False), ("parquet", True), ("parquet", False)],
)
def test_every_split_trains_on_every_upload(
    client: Any, runtime: Any, transactions: pd.DataFrame, fmt: str, zoned: bool
) -> None:
    fs_id = _feature_set(client, transactions, fmt, zoned)
    base = {
        "name": "m",
        "feature_set_id": fs_id,
        "algorithm": "xgboost",
        "hyperparameters": SMALL["xgboost"],
    }
    jobs = {
        "out_of_time": _train(client, base),
        "time": _train(client, {**base, "split": WINDOWS}),
        "random": _train(client, {**base, "train_test_split": 0.8}),
    }
    for kind, job in jobs.items():
        assert job["status"] == "COMPLETED", (kind, job)
        metrics = job["metrics"]
        assert metrics["split"]["type"] == kind
        assert (
            metrics["rows_fit"] and metrics["rows_validation"] and metrics["rows_test"]
        )
        assert metrics["threshold_source"] == "validation"
        assert metrics["expected_cost_per_1000"] >= 0
    assert jobs["out_of_time"]["config"]["split"]["gap"] == "3d"  # the label delay
    for kind in ("out_of_time", "time"):
        split = jobs[kind]["metrics"]["split"]
        gap = pd.Timedelta(days=3)  # the label delay
        # the test period starts at least a label delay after the validation period,
        # which ends the training period
        assert pd.Timestamp(split["test_start"]) >= pd.Timestamp(
            split["validation_end"]
        ) + gap - pd.Timedelta("1s")
        assert pd.Timestamp(split["validation_start"]) > pd.Timestamp(
            split["fit_start"]
        )
        assert jobs[kind]["metrics"]["warnings"] == []
    assert pd.Timestamp(jobs["time"]["metrics"]["split"]["test_start"]) >= pd.Timestamp(
        "2026-01-24", tz="UTC"
    )
    assert "random split" in jobs["random"]["metrics"]["warnings"][0]


@pytest.mark.slow
def test_cost_inputs_choose_the_threshold_and_report_the_cost(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    fs_id = _feature_set(client, transactions, "parquet", True)
    base = {
        "name": "m",
        "feature_set_id": fs_id,
        "algorithm": "xgboost",
        "hyperparameters": SMALL["xgboost"],
    }
    by_cost = _train(
        client, {**base, "cost_missed_fraud": 200.0, "cost_false_alarm": 2.0}
    )
    by_ratio = _train(client, {**base, "cost_ratio": 100.0})
    for job in (by_cost, by_ratio):
        assert job["status"] == "COMPLETED", job
        metrics = job["metrics"]
        assert metrics["threshold_source"] == "cost"
        cm = metrics["confusion_matrix"]
        cost = (
            metrics["cost_missed_fraud"] * cm["fn"]
            + metrics["cost_false_alarm"] * cm["fp"]
        )
        assert metrics["expected_cost_per_1000"] == pytest.approx(
            1000 * cost / metrics["support"]
        )
    assert by_ratio["metrics"]["cost_missed_fraud"] == 100.0
    assert by_ratio["metrics"]["cost_false_alarm"] == 1.0
    # the same ratio picks the same threshold on the same validation period
    model = client.get(f"{API}/models/{by_cost['model_id']}").json()["data"]
    again = client.get(f"{API}/models/{by_ratio['model_id']}").json()["data"]
    assert model["threshold"] == pytest.approx(again["threshold"])


def test_split_and_cost_errors_name_the_field(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    fs_id = _feature_set(client, transactions.head(1500), "parquet", True)
    body = {"name": "x", "feature_set_id": fs_id, "algorithm": "xgboost"}
    cases = [
        ({"split": {"type": "weekly"}}, "split.type"),
        ({"split": {"type": "time", "train_start": "2026-01-01"}}, "split.train_end"),
        ({"split": {"test_fraction": 0.99}}, "split.test_fraction"),
        ({"cost_missed_fraud": -1}, "cost_missed_fraud"),
        ({"cost_ratio": 5, "cost_missed_fraud": 5}, "cost_ratio"),
    ]
    for extra, field in cases:
        resp = client.post(f"{API}/training/jobs", json={**body, **extra})
        assert resp.status_code == 422, (extra, resp.text)
        fields = [d["field"] for d in resp.json()["error"]["details"]]
        assert any(field in f for f in fields), (field, resp.text)


def test_a_split_that_cannot_be_made_fails_the_job_with_a_log_line(
    client: Any,
    runtime: Any,
    transactions: pd.DataFrame,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fs_id = _feature_set(client, transactions.head(1500), "csv", True)
    caplog.set_level(logging.WARNING)
    job = _train(
        client,
        {
            "name": "x",
            "feature_set_id": fs_id,
            "algorithm": "xgboost",
            "hyperparameters": SMALL["xgboost"],
            "split": {"gap": "60d"},
        },
    )
    assert job["status"] == "FAILED"
    assert "split.gap" in job["error_message"]
    lines = [r for r in caplog.records if getattr(r, "job_id", None) == job["job_id"]]
    assert lines and lines[-1].reason == job["error_message"]  # type: ignore[attr-defined]
    assert lines[-1].kind == "training"  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_trained_model_carries_its_test_rows(
    client: Any,
    runtime: Any,
    transactions: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the stored evaluation needs: the test rows' ids, users, times and the
    calibrated scores served, in the test period and one per test row."""
    from shared.services.training_handoff import ModelHandOff

    handed: list[Any] = []
    register = ModelHandOff.register_model

    def keep(self: ModelHandOff, trained: Any) -> dict[str, Any]:
        handed.append(trained)
        return register(self, trained)

    monkeypatch.setattr(ModelHandOff, "register_model", keep)
    fs_id = _feature_set(client, transactions, "csv", False)
    job = _train(
        client,
        {
            "name": "m",
            "feature_set_id": fs_id,
            "algorithm": "xgboost",
            "hyperparameters": SMALL["xgboost"],
        },
    )
    assert job["status"] == "COMPLETED", job
    (trained,) = handed
    n = job["metrics"]["rows_test"]
    assert len(trained.test_transaction_ids) == len(trained.test_user_ids) == n
    assert len(trained.test_scores) == len(trained.y_test) == n
    test_start = pd.Timestamp(job["metrics"]["split"]["test_start"])
    times = pd.to_datetime(trained.test_timestamps_ns, utc=True)
    assert times.min() == test_start
    known = set(transactions["transaction_id"].astype(str))
    assert set(trained.test_transaction_ids) <= known
    assert trained.model.predict_scores(trained.X_test) == pytest.approx(
        trained.test_scores
    )
