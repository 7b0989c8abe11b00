"""Retraining end to end through the API and the local Durable engine: a champion
trained before a change in fraud, a challenger retrained on data after it, compared on
the same recent holdout, gated and promoted (automatically or later by hand)."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from functions.api.schemas_retraining import RetrainingJob
from shared.adapters.blobs.local_copy import local_file
from shared.container import Container
from shared.db.models import Dataset
from tests.support.jobs import wait_for_job
from tests.support.retraining import (
    before_change,
    champion,
    changing_fraud,
    retrain,
    upload_frame,
)
from tests.support.serving import API

GATES = ["baselines", "onnx_parity", "bias", "champion_comparison"]
HOLDOUT_METRICS = {"auc_roc", "auc_pr", "precision", "recall", "f1_score"}


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return changing_fraud()


def _model(client: Any, model_id: str) -> dict[str, Any]:
    resp = client.get(f"{API}/models/{model_id}")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    return data


def _assembled(ctx: Container, job: dict[str, Any]) -> pd.DataFrame:
    dataset_id = job["steps"]["assemble"]["dataset_id"]
    with ctx.db.session() as s:
        dataset = s.get(Dataset, uuid.UUID(dataset_id))
        assert dataset is not None
        path = dataset.storage_path
    with local_file(ctx.blobs, path) as local:
        return pq.read_table(local).to_pandas()


@pytest.mark.slow
def test_a_challenger_on_new_data_is_gated_and_promoted_automatically(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    champion_id = champion(client, before_change(transactions))
    new_id = upload_frame(client, "after", transactions)
    job = retrain(
        client,
        {
            "model_id": champion_id,
            "reason": "fraud changed",
            "data_strategy": {"type": "replace", "new_dataset_id": new_id},
            "auto_promote": True,
        },
    )
    assert job["status"] == "COMPLETED", job
    RetrainingJob.model_validate(job)  # the answer is what the OpenAPI document says
    assert job["stage"] == "done" and job["progress"] == 1.0
    assert job["model_id"] == champion_id and job["reason"] == "fraud changed"
    assert list(job["steps"]) == [
        "assemble",
        "features",
        "train",
        "evaluate",
        "gates",
        "promote",
    ]

    # champion and challenger on the same holdout, each with the spec's metrics
    champ, chall = job["champion"], job["challenger"]
    assert champ["model_id"] == champion_id
    assert chall["model_id"] == job["challenger_model_id"]
    for block in (champ, chall):
        assert HOLDOUT_METRICS <= set(block["metrics"]), block
        assert block["metrics"]["support"] == job["holdout"]["rows"] > 0
        assert block["missing_features"] == []
    assert job["holdout"]["positives"] > 0
    # the holdout is the latest period, after the change
    assert job["holdout"]["start"] >= "2026-02-"
    assert chall["metrics"]["auc_pr"] > champ["metrics"]["auc_pr"]

    assert [g["name"] for g in job["gates"]] == GATES
    assert all(g["passed"] for g in job["gates"]), job["gates"]
    assert job["decided_by"] == "all_gates_passed"
    assert job["promoted"] is True

    # the challenger: the champion's name, algorithm and configuration, in production
    challenger = _model(client, job["challenger_model_id"])
    previous = _model(client, champion_id)
    assert challenger["status"] == "PRODUCTION"
    assert challenger["name"] == previous["name"] and challenger["version"] == "2.0"
    assert challenger["algorithm"] == previous["algorithm"]
    for name in ("max_depth", "n_estimators", "learning_rate"):
        assert challenger["hyperparameters"][name] == previous["hyperparameters"][name]
    assert previous["status"] == "TRAINED"  # never in production: nothing archived
    fs_new = client.get(f"{API}/features/sets/{challenger['feature_set_id']}")
    fs_old = client.get(f"{API}/features/sets/{previous['feature_set_id']}")
    new_config = fs_new.json()["data"]["feature_config"]
    old_config = fs_old.json()["data"]["feature_config"]
    for key in ("groups", "windows", "label_delay", "column_mapping"):
        assert new_config[key] == old_config[key], key
    assert "sample_weight" in new_config["carried_columns"]

    # every step is visible through the generic job API too
    generic = client.get(f"{API}/jobs/{job['job_id']}").json()["data"]
    assert generic["kind"] == "retraining" and generic["status"] == "COMPLETED"
    instance = runtime.engine.wait_for_completion(job["job_id"], timeout=30)
    assert instance.custom_status == {"stage": "done"}
    assert instance.output["decided_by"] == "all_gates_passed"
    for sub in (
        job["steps"]["features"]["features_job_id"],
        job["steps"]["train"]["training_job_id"],
        job["promotion"]["online_backfill_job_id"],
    ):
        done = wait_for_job(client, f"{API}/jobs/{sub}")
        assert done["status"] == "COMPLETED", done
    listed = client.get(f"{API}/retraining/jobs").json()
    assert [j["job_id"] for j in listed["data"]] == [job["job_id"]]
    assert listed["meta"]["pagination"]["total"] == 1

    # replace: every row of the new data, each weighing 1
    assembled = _assembled(ctx, job)
    assert len(assembled) == len(transactions)
    assert (assembled["sample_weight"] == 1.0).all()


@pytest.mark.slow
def test_merge_weighs_each_source_and_waits_in_staging_for_a_promotion(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    history = before_change(transactions)
    champion_id = champion(client, history)
    after = transactions.iloc[len(history) :]
    new_id = upload_frame(client, "after", after)
    historical_id = upload_frame(client, "before", history)
    job = retrain(
        client,
        {
            "model_id": champion_id,
            "reason": "merge",
            "data_strategy": {
                "type": "merge",
                "new_dataset_id": new_id,
                "historical_dataset_id": historical_id,
                "sample_weights": {"new": 0.7, "historical": 0.3},
            },
            "auto_promote": False,
        },
    )
    assert job["status"] == "COMPLETED", job
    assert "promote" not in job["steps"] and job["promoted"] is False

    # each source's weights add up to its share of the total
    assembled = _assembled(ctx, job)
    total = len(assembled)
    assert total == len(transactions)
    is_new = assembled["transaction_id"].isin(set(after["transaction_id"]))
    weights = assembled["sample_weight"]
    assert weights[is_new].sum() == pytest.approx(0.7 * total)
    assert weights[~is_new].sum() == pytest.approx(0.3 * total)
    summary = job["steps"]["assemble"]
    assert summary["rows_new"] == len(after)
    assert summary["rows_historical"] == len(history)
    assert summary["weight_new"] == pytest.approx(0.7 * total)
    # the challenger trained with them: its training job names the column
    training = client.get(
        f"{API}/training/jobs/{job['steps']['train']['training_job_id']}"
    ).json()["data"]
    assert training["config"]["sample_weight_column"] == "sample_weight"

    challenger_id = job["challenger_model_id"]
    assert _model(client, challenger_id)["status"] == "STAGING"
    url = f"{API}/retraining/jobs/{job['job_id']}/promote"
    if job["decided_by"] != "all_gates_passed":
        pytest.fail(f"the merged challenger failed a gate: {job['gates']}")
    promoted = client.post(url, json={"reason": "reviewed", "actor": "ana"})
    assert promoted.status_code == 200, promoted.text
    data = promoted.json()["data"]
    assert data["promoted"] is True and data["promotion"]["by"] == "ana"
    assert _model(client, challenger_id)["status"] == "PRODUCTION"
    again = client.post(url, json={"reason": "twice"})
    assert again.status_code == 409, again.text


@pytest.mark.slow
def test_a_gate_that_fails_decides_and_blocks_the_promotion(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    """A baseline of the champion the challenger cannot meet: the job completes,
    decided by that gate, nothing is promoted, and a promotion by hand is refused
    naming the gate."""
    champion_id = champion(client, before_change(transactions))
    resp = client.post(
        f"{API}/models/{champion_id}/baselines",
        json={"baselines": [{"metric": "auc_roc", "threshold": 1.0, "operator": "eq"}]},
    )
    assert resp.status_code == 201, resp.text
    job = retrain(
        client,
        {
            "model_id": champion_id,
            "reason": "drift",
            "data_strategy": {"type": "sliding_window", "window": "20d"},
            "auto_promote": True,
        },
    )
    assert job["status"] == "COMPLETED", job
    assert job["decided_by"] == "baselines" and job["promoted"] is False
    baselines = job["gates"][0]
    assert baselines["name"] == "baselines" and baselines["passed"] is False
    assert baselines["value"][0]["metric"] == "auc_roc"
    assert _model(client, job["challenger_model_id"])["status"] == "STAGING"
    # the sliding window: only the last 20 days of the champion's own dataset
    summary = job["steps"]["assemble"]
    assert summary["rows_outside_window"] > 0
    span = pd.Timestamp(summary["end"]) - pd.Timestamp(summary["start"])
    assert span <= pd.Timedelta(days=20)

    resp = client.post(
        f"{API}/retraining/jobs/{job['job_id']}/promote", json={"reason": "please"}
    )
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "GATE_FAILED" and "baselines" in error["message"]
    assert error["details"][0]["field"] == "gates.baselines"
    assert _model(client, job["challenger_model_id"])["status"] == "STAGING"


@pytest.mark.slow
def test_a_step_that_fails_ends_the_job_naming_it(
    client: Any, runtime: Any, transactions: pd.DataFrame
) -> None:
    """Two hours of data hold no fraud to learn from: the training step fails, and
    the job says so."""
    champion_id = champion(client, before_change(transactions))
    job = retrain(
        client,
        {
            "model_id": champion_id,
            "reason": "too little",
            "data_strategy": {"type": "sliding_window", "window": "2h"},
            "auto_promote": True,
        },
    )
    assert job["status"] == "FAILED", job
    assert job["stage"] == "failed" and job["failed_step"] == "train"
    assert job["error_message"].startswith("train: The label 'is_fraud' has only")
    assert job["challenger_model_id"] is None and job["promoted"] is False
    assert list(job["steps"]) == ["assemble", "features", "train"]
    generic = client.get(f"{API}/jobs/{job['job_id']}").json()["data"]
    assert generic["status"] == "FAILED" and generic["error_message"].startswith(
        "train: "
    )
