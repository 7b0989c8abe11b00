"""Deleting a dataset that others depend on: refused by default with the dependents
named, deleted with them on ?cascade=true unless a model among them is in production or
has logged predictions, and a delete interrupted half-way finishes on a retry. On the
embedded stack (SQLite + folder) and the Azure one (PostgreSQL + Azurite)."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete, func, select, update

from shared.container import Container
from shared.db.models import (
    Dataset,
    DatasetVersion,
    FeatureSet,
    Job,
    MLModel,
    ModelTransition,
    Prediction,
    TrainingJob,
)
from shared.ports import StorageError
from tests.support.serving import feature_set, generated, promote, train

API = "/api/v1"


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return generated(1500)


def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "meta"}, body
    assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


def _dataset_of(client: Any, fs_id: str) -> str:
    return str(client.get(f"{API}/features/sets/{fs_id}").json()["data"]["dataset_id"])


def _blobs(ctx: Container, dataset_id: str, fs_id: str, model_id: str | None) -> int:
    found = ctx.blobs.list(f"datasets/{dataset_id}/") + ctx.blobs.list(
        f"features/{fs_id}/"
    )
    if model_id:
        found += ctx.blobs.list(f"models/{model_id}/")
    return len(found)


def _all_intact(client: Any, dataset_id: str, fs_id: str, model_id: str | None) -> None:
    """Everything still reads as before: rows, statuses and the blobs behind them."""
    got = client.get(f"{API}/datasets/{dataset_id}")
    assert got.status_code == 200 and got.json()["data"]["status"] == "ACTIVE"
    preview = client.get(f"{API}/datasets/{dataset_id}/preview", params={"rows": 2})
    assert preview.status_code == 200, preview.text
    fs = client.get(f"{API}/features/sets/{fs_id}")
    assert fs.status_code == 200 and fs.json()["data"]["status"] == "READY"
    fs_preview = client.get(f"{API}/features/sets/{fs_id}/preview", params={"rows": 2})
    assert fs_preview.status_code == 200, fs_preview.text
    if model_id:
        assert client.get(f"{API}/models/{model_id}").status_code == 200


def _all_gone(
    client: Any, ctx: Container, dataset_id: str, fs_id: str, model_id: str | None
) -> None:
    assert client.get(f"{API}/datasets/{dataset_id}").status_code == 404
    assert client.get(f"{API}/features/sets/{fs_id}").status_code == 404
    if model_id:
        assert client.get(f"{API}/models/{model_id}").status_code == 404
    assert _blobs(ctx, dataset_id, fs_id, model_id) == 0
    with ctx.db.session() as s:
        for table in (Dataset, DatasetVersion, FeatureSet, MLModel, TrainingJob):
            assert s.scalar(select(func.count()).select_from(table)) == 0, table
        assert s.scalar(select(func.count()).select_from(ModelTransition)) == 0


@pytest.mark.slow
def test_dependents_are_named_and_nothing_changes_until_cascade(
    client: Any, ctx: Container, runtime: Any, history: pd.DataFrame
) -> None:
    fs_id = feature_set(client, history)
    model_id = train(client, fs_id)
    dataset_id = _dataset_of(client, fs_id)
    blobs_before = _blobs(ctx, dataset_id, fs_id, model_id)

    error = _error(client.delete(f"{API}/datasets/{dataset_id}"), 409, "CONFLICT")
    assert fs_id in error["message"] and model_id in error["message"]
    assert "cascade=true" in error["message"]
    named = " ".join(d["message"] for d in error["details"])
    assert fs_id in named and model_id in named
    assert {d["field"] for d in error["details"]} == {"feature_sets", "models"}
    _all_intact(client, dataset_id, fs_id, model_id)
    assert _blobs(ctx, dataset_id, fs_id, model_id) == blobs_before

    # a model that has scored transactions is a dependent cascade does not remove:
    # its logged predictions are the record of what it decided
    with ctx.db.session(write=True) as s:
        s.add(
            Prediction(
                model_id=uuid.UUID(model_id),
                transaction_id="T-1",
                input_features={},
                fraud_score=0.1,
                is_fraud=False,
            )
        )
    resp = client.delete(f"{API}/datasets/{dataset_id}", params={"cascade": "true"})
    error = _error(resp, 409, "CONFLICT")
    assert model_id in error["message"] and "prediction" in error["message"]
    assert any(model_id in d["message"] for d in error["details"])
    _all_intact(client, dataset_id, fs_id, model_id)
    assert _blobs(ctx, dataset_id, fs_id, model_id) == blobs_before

    with ctx.db.session(write=True) as s:
        s.execute(delete(Prediction))
    resp = client.delete(f"{API}/datasets/{dataset_id}", params={"cascade": "true"})
    assert resp.status_code == 204, resp.text
    _all_gone(client, ctx, dataset_id, fs_id, model_id)
    assert client.delete(f"{API}/datasets/{dataset_id}").status_code == 404


def test_cascade_refuses_while_a_dependent_model_is_in_production(
    client: Any, ctx: Container, runtime: Any, history: pd.DataFrame
) -> None:
    fs_id = feature_set(client, history)
    model_id = train(client, fs_id)
    promote(client, model_id)
    dataset_id = _dataset_of(client, fs_id)
    blobs_before = _blobs(ctx, dataset_id, fs_id, model_id)
    for params in ({}, {"cascade": "true"}):
        resp = client.delete(f"{API}/datasets/{dataset_id}", params=params)
        error = _error(resp, 409, "CONFLICT")
        assert model_id in error["message"]
    assert "PRODUCTION" in error["message"]
    assert any(
        model_id in d["message"] and "PRODUCTION" in d["message"]
        for d in error["details"]
    )
    _all_intact(client, dataset_id, fs_id, model_id)
    assert _blobs(ctx, dataset_id, fs_id, model_id) == blobs_before
    model = client.get(f"{API}/models/{model_id}").json()["data"]
    assert model["status"] == "PRODUCTION"


class _FailingDatasetDelete:
    """The store fails when the dataset's own blobs are removed, as a crash or a
    dropped connection would half-way through a delete."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def delete_prefix(self, prefix: str) -> int:
        if prefix.startswith("datasets/"):
            raise StorageError("connection reset during delete")
        return int(self.inner.delete_prefix(prefix))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.slow
def test_a_delete_interrupted_half_way_finishes_on_retry(
    client: Any, ctx: Container, runtime: Any, history: pd.DataFrame
) -> None:
    fs_id = feature_set(client, history)
    model_id = train(client, fs_id)
    dataset_id = _dataset_of(client, fs_id)
    store = ctx.blobs
    ctx.blobs = _FailingDatasetDelete(store)  # type: ignore[assignment]
    resp = client.delete(f"{API}/datasets/{dataset_id}", params={"cascade": "true"})
    _error(resp, 503, "STORAGE_UNAVAILABLE")
    ctx.blobs = store

    # consistent in between: nothing reads as ready while its files are going
    assert client.get(f"{API}/datasets/{dataset_id}").status_code == 404
    assert client.get(f"{API}/features/sets/{fs_id}").status_code == 404
    assert client.get(f"{API}/models/{model_id}").status_code == 404
    listed = client.get(f"{API}/features/sets").json()["data"]
    assert fs_id not in {f["id"] for f in listed}

    resp = client.delete(f"{API}/datasets/{dataset_id}")
    assert resp.status_code == 204, resp.text
    _all_gone(client, ctx, dataset_id, fs_id, model_id)


def test_a_dataset_left_deleting_by_an_earlier_crash_can_be_deleted(
    client: Any, ctx: Container, runtime: Any, history: pd.DataFrame
) -> None:
    """The state the old delete left behind: the dataset hidden in DELETING, its
    feature set still READY with its files already gone."""
    fs_id = feature_set(client, history)
    dataset_id = _dataset_of(client, fs_id)
    with ctx.db.session(write=True) as s:
        s.execute(
            update(Dataset)
            .where(Dataset.id == uuid.UUID(dataset_id))
            .values(status="DELETING")
        )
    ctx.blobs.delete_prefix(f"features/{fs_id}/")
    ctx.blobs.delete_prefix(f"datasets/{dataset_id}/")

    error = _error(client.delete(f"{API}/datasets/{dataset_id}"), 409, "CONFLICT")
    assert fs_id in error["message"]
    resp = client.delete(f"{API}/datasets/{dataset_id}", params={"cascade": "true"})
    assert resp.status_code == 204, resp.text
    _all_gone(client, ctx, dataset_id, fs_id, None)


def test_delete_waits_for_unfinished_work_on_the_dataset(
    client: Any, ctx: Container
) -> None:
    from tests.support.data import upload

    dataset_id = upload(client).json()["data"]["id"]
    job_id = uuid.uuid4()
    with ctx.db.session(write=True) as s:
        s.add(
            Job(
                id=job_id,
                kind="features",
                status="RUNNING",
                input={"dataset_id": dataset_id, "feature_set_id": str(uuid.uuid4())},
            )
        )
    for params in ({}, {"cascade": "true"}):
        resp = client.delete(f"{API}/datasets/{dataset_id}", params=params)
        error = _error(resp, 409, "CONFLICT")
        assert str(job_id) in error["message"]
    assert client.get(f"{API}/datasets/{dataset_id}").status_code == 200
    assert ctx.blobs.list(f"datasets/{dataset_id}/")

    with ctx.db.session(write=True) as s:
        s.execute(update(Job).where(Job.id == job_id).values(status="COMPLETED"))
    assert client.delete(f"{API}/datasets/{dataset_id}").status_code == 204
    assert ctx.blobs.list(f"datasets/{dataset_id}/") == []


def test_cascade_must_be_a_boolean(client: Any) -> None:
    from tests.support.data import upload

    dataset_id = upload(client).json()["data"]["id"]
    resp = client.delete(f"{API}/datasets/{dataset_id}", params={"cascade": "maybe"})
    error = _error(resp, 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == "cascade"
    assert client.get(f"{API}/datasets/{dataset_id}").status_code == 200
