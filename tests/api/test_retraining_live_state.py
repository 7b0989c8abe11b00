"""A retraining's promotion forgets no live traffic: transactions scored on the
champion stay in the online state that the challenger (same feature configuration)
goes on scoring with."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from sqlalchemy import select

from shared.container import Container
from shared.db.models import Prediction
from tests.support.jobs import wait_for_job
from tests.support.retraining import retrain
from tests.support.serving import API, as_request, generated, serve

LIVE_USER = "LIVE-USER"


def _live(history: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """``n`` transactions of a user the history never saw, a minute apart after it."""
    row = history.iloc[-1].to_dict()
    end = pd.Timestamp(history["timestamp"].max())
    out = []
    for i in range(n):
        txn = as_request(row)
        txn.update(
            transaction_id=f"LIVE-{i}",
            user_id=LIVE_USER,
            timestamp=(end + pd.Timedelta(minutes=i + 1)).isoformat(),
        )
        out.append(txn)
    return out


def _features(ctx: Container, transaction_id: str) -> dict[str, Any]:
    with ctx.db.session() as s:
        logged = s.scalars(
            select(Prediction).where(Prediction.transaction_id == transaction_id)
        ).one()
        return dict(logged.input_features)


@pytest.mark.slow
def test_after_a_retraining_promotion_the_live_transactions_still_count(
    client: Any, ctx: Container, runtime: Any
) -> None:
    history = generated(3000, seed=13)
    champion_id = serve(client, history)
    live = _live(history, 6)
    for txn in live[:5]:
        resp = client.post(f"{API}/predict", json={"transaction": txn})
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["model_id"] == champion_id
    assert _features(ctx, "LIVE-4")["user_txn_count_24h"] == 4

    job = retrain(
        client,
        {
            "model_id": champion_id,
            "reason": "scheduled refresh",
            "data_strategy": {"type": "replace"},  # the champion's own dataset
            "auto_promote": True,
        },
    )
    assert job["status"] == "COMPLETED", job
    assert job["promoted"] is True, job["gates"]
    backfill = wait_for_job(
        client, f"{API}/jobs/{job['promotion']['online_backfill_job_id']}"
    )
    assert backfill["status"] == "COMPLETED", backfill
    assert backfill["result"]["kept_live_state"] is True

    resp = client.post(f"{API}/predict", json={"transaction": live[5]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["model_id"] == job["challenger_model_id"]
    features = _features(ctx, "LIVE-5")
    # the five live transactions before it, all of them scored on the champion
    assert features["user_txn_count_24h"] == 5
    assert features["user_txn_count_1h"] == 5
