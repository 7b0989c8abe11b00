"""POST /models/{id}/score: a backtest job followed through GET /jobs/{id}, its scores
equal to the model scoring the whole dataset's batch features on the window's rows;
and its errors."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.features import FeatureConfig, compute_features
from ml.scoring import OnnxScorer
from shared.container import Container
from shared.db.models import MLModel
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API, feature_set, generated, train


def _dataset(client: Any, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    resp = upload(client, name="later", content=buf.getvalue(), filename="t.parquet")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["data"]["id"])


@pytest.mark.slow
def test_backtest_scores_the_window_with_history(
    client: Any, ctx: Container, runtime: Any
) -> None:
    history = generated(4000, seed=8)
    model_id = train(client, feature_set(client, history))
    later = generated(5000, seed=9)
    dataset_id = _dataset(client, later)
    ts = pd.to_datetime(later["timestamp"], utc=True)
    start = ts.min() + pd.Timedelta(days=20)
    end = ts.min() + pd.Timedelta(days=25)
    body = {
        "dataset_id": dataset_id,
        "dataset_version": "1.0",
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
    }
    resp = client.post(f"{API}/models/{model_id}/score", json=body)
    assert resp.status_code == 202, resp.text
    job = wait_for_job(client, f"{API}/jobs/{resp.json()['data']['job_id']}", 120)
    assert job["status"] == "COMPLETED", job
    assert job["kind"] == "backtest"
    result = job["result"]
    inside = ((ts >= start) & (ts < end)).to_numpy()
    assert result["rows_scored"] == int(inside.sum()) > 0
    assert result["rows_history"] == int((ts < start).sum())
    assert result["positives"] == int(later["is_fraud"][inside].sum())

    scores = pq.read_table(pa.BufferReader(ctx.blobs.get_bytes(result["scores_path"])))
    assert scores.column_names == [
        "transaction_id",
        "timestamp",
        "user_id",
        "score",
        "label",
    ]
    # reference: the batch features of the whole dataset, the window's rows scored
    with ctx.db.session() as s:
        details = s.get(MLModel, uuid.UUID(model_id)).details  # type: ignore[union-attr]
    scorer = OnnxScorer(
        ctx.blobs.get_bytes(f"models/{model_id}/model.onnx"),
        details["features"],
        details["score_transform"],
    )
    frame = compute_features(later, FeatureConfig()).frame[inside]
    expected = scorer.score(frame[details["features"]].to_numpy(np.float32))
    assert scores["transaction_id"].to_pylist() == frame["transaction_id"].tolist()
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, atol=1e-6)
    assert scores["label"].to_pylist() == later["is_fraud"][inside].tolist()
    assert scores["timestamp"].to_pandas().min() >= start

    # no window: every row
    whole = client.post(
        f"{API}/models/{model_id}/score", json={"dataset_id": dataset_id}
    ).json()["data"]
    done = wait_for_job(client, f"{API}/jobs/{whole['job_id']}", 120)
    assert done["status"] == "COMPLETED", done
    assert done["result"]["rows_scored"] == len(later)

    # a window the data does not reach ends FAILED with the reason
    empty = client.post(
        f"{API}/models/{model_id}/score",
        json={"dataset_id": dataset_id, "window_start": "2100-01-01T00:00:00Z"},
    ).json()["data"]
    failed = wait_for_job(client, f"{API}/jobs/{empty['job_id']}", 120)
    assert failed["status"] == "FAILED"
    assert "window_start" in failed["error_message"]


def _model_row(ctx: Container, **details: Any) -> str:
    model_id = uuid.uuid4()
    with ctx.db.session() as s:
        s.add(
            MLModel(
                id=model_id,
                name="bt",
                version=uuid.uuid4().hex[:6],
                algorithm="xgboost",
                storage_path=f"models/{model_id}/",
                metrics={},
                details=details,
            )
        )
    return str(model_id)


def test_errors(client: Any, ctx: Container) -> None:
    dataset_id = _dataset(client, generated(50, seed=1))
    model_id = _model_row(ctx, features=["amount"], score_transform={})
    url = f"{API}/models/{model_id}/score"

    backwards = client.post(
        url,
        json={
            "dataset_id": dataset_id,
            "window_start": "2026-02-01T00:00:00Z",
            "window_end": "2026-01-01T00:00:00Z",
        },
    )
    assert backwards.status_code == 422
    fields = [d["field"] for d in backwards.json()["error"]["details"]]
    assert fields == ["window_end"]

    missing = client.post(url, json={})
    assert missing.status_code == 422 and "dataset_id" in missing.text
    bad_time = client.post(url, json={"dataset_id": dataset_id, "window_end": "soon"})
    assert bad_time.status_code == 422 and "window_end" in bad_time.text

    unknown_model = client.post(
        f"{API}/models/{uuid.uuid4()}/score", json={"dataset_id": dataset_id}
    )
    assert unknown_model.status_code == 404
    unknown_data = client.post(url, json={"dataset_id": str(uuid.uuid4())})
    assert unknown_data.status_code == 404
    no_version = client.post(
        url, json={"dataset_id": dataset_id, "dataset_version": "9.0"}
    )
    assert no_version.status_code == 404
    # a registered model without a feature set cannot say how to compute features
    assert client.post(url, json={"dataset_id": dataset_id}).status_code == 409
    no_onnx = _model_row(ctx)
    refused = client.post(
        f"{API}/models/{no_onnx}/score", json={"dataset_id": dataset_id}
    )
    assert refused.status_code == 409
    assert client.get(f"{API}/jobs", params={"kind": "backtest"}).json()["data"] == []
