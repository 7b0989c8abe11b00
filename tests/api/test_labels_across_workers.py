"""Labels reach every place that keeps them, whichever worker receives them: the
prediction rows, and the online state of every feature configuration that scored the
transaction, seen by the next prediction of another worker (its own container, engine
and state cache on the same database)."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from shared.container import Container
from shared.db.models import Prediction
from shared.db.session import Database
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API, as_request, generated, serve, train

pytestmark = pytest.mark.slow

HISTORY = 4000


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generated(HISTORY)


@pytest.fixture
def other_worker(ctx: Container) -> Iterator[Container]:
    """A second worker on the same database and blob store."""
    worker = Container(settings=ctx.settings, db=Database(ctx.db.url), blobs=ctx.blobs)
    yield worker
    worker.close()
    worker.db.dispose()


def _features(ctx: Container, transaction_id: str, model_id: str) -> dict[str, Any]:
    with ctx.db.session() as s:
        row = s.scalars(
            select(Prediction).where(
                Prediction.transaction_id == transaction_id,
                Prediction.model_id == uuid.UUID(model_id),
            )
        ).one()
        return dict(row.input_features)


def _merchant_visits(history: pd.DataFrame, merchant: str) -> list[dict[str, Any]]:
    """Two purchases at a merchant never seen before, then one 8 days later (past the
    7-day label delay, inside the 30-day fraud-rate window)."""
    start = pd.Timestamp(history["timestamp"].max()) + pd.Timedelta(days=1)
    base = as_request(history.iloc[-1].to_dict())
    base["merchant_id"] = merchant
    times = [start, start + pd.Timedelta(hours=1), start + pd.Timedelta(days=8)]
    return [
        {**base, "transaction_id": f"{merchant}-{i}", "timestamp": t.isoformat()}
        for i, t in enumerate(times)
    ]


def _shadow_model(client: Any, history: pd.DataFrame) -> str:
    """A model on a second feature configuration (other windows)."""
    buf = io.BytesIO()
    history.to_parquet(buf, index=False)
    resp = upload(client, name="tx2", content=buf.getvalue(), filename="tx2.parquet")
    body = {"dataset_id": resp.json()["data"]["id"], "config": {"windows": ["1h"]}}
    job = client.post(f"{API}/features/compute", json=body).json()["data"]
    done = wait_for_job(client, f"{API}/features/jobs/{job['job_id']}")
    return train(client, str(done["feature_set_id"]), name="shadow")


def test_a_label_through_one_worker_reaches_the_others_next_prediction(
    client: Any,
    ctx: Container,
    runtime: Any,
    other_worker: Container,
    transactions: pd.DataFrame,
) -> None:
    production = serve(client, transactions)
    shadow = _shadow_model(client, transactions)
    labelled = _merchant_visits(transactions, "M-LABELLED")
    control = _merchant_visits(transactions, "M-CONTROL")
    # the other worker scores the first two visits of each merchant with both models:
    # its caches hold those merchants' states
    scored = {}
    for txn in labelled[:2] + control[:2]:
        for model_id in (production, shadow):
            scored[txn["transaction_id"], model_id] = other_worker.predictor.predict(
                txn, model_id
            )
    # no store of either configuration is loaded in the worker taking the label (its
    # scoring service is fresh), and the label names the production model's prediction
    ctx.close()
    first = scored[labelled[0]["transaction_id"], production]
    resp = client.post(
        f"{API}/predictions/labels",
        json={"labels": [{"prediction_id": first["prediction_id"], "label": True}]},
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["updated"] == 1 and data["unmatched_prediction_ids"] == []
    assert data["online_state_updated"] == 2  # both configurations scored it

    # the prediction row
    with ctx.db.session() as s:
        rows = s.scalars(
            select(Prediction).where(
                Prediction.transaction_id == labelled[0]["transaction_id"]
            )
        ).all()
    assert {str(r.model_id): r.actual_label for r in rows} == {
        production: True,
        shadow: None,  # a prediction id labels its own row
    }
    # both configurations' states, read from the database
    merchant = ("merchant", "M-LABELLED")
    for model_id in (production, shadow):
        store = ctx.predictor.models.resolve(model_id).store
        state = store.states([merchant])[merchant]
        assert state["lab"][state["tid"].index(labelled[0]["transaction_id"])] == 1

    # the other worker's next prediction at that merchant sees the label
    for txn in (labelled[2], control[2]):
        other_worker.predictor.predict(txn, production)
    seen = _features(other_worker, labelled[2]["transaction_id"], production)
    unseen = _features(other_worker, control[2]["transaction_id"], production)
    # one labelled visit, a fraud (the second visit has no label)
    for window in ("1d", "7d", "30d"):
        rate = f"merchant_fraud_rate_{window}"
        assert (seen[rate], unseen[rate]) == (1.0, 0.0), rate
