"""Promotion's online backfill loads only the transactions before its ``as_of`` time:
now by default, or a time given to the backfill."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import pytest

from ml.features import FeatureConfig, backfill_states
from shared.container import Container
from shared.db.models import FeatureSet, MLModel
from shared.services.online_backfill import start_backfill
from shared.services.online_features import OnlineFeatureStore
from tests.support.jobs import wait_for_job
from tests.support.serving import API, feature_set, generated, promote, train


def _with_future_rows(history: pd.DataFrame) -> pd.DataFrame:
    future = history.tail(100).copy()
    future["transaction_id"] = [f"F{i}" for i in range(len(future))]
    future["user_id"] = [f"FUTURE-{i % 10}" for i in range(len(future))]
    future["timestamp"] = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=10)
    return pd.concat([history, future], ignore_index=True)


def _store(ctx: Container, fs_id: str) -> OnlineFeatureStore:
    with ctx.db.session() as s:
        fs = s.get(FeatureSet, uuid.UUID(fs_id))
        assert fs is not None
        config = dict(fs.feature_config or {})
    return OnlineFeatureStore.for_feature_config(ctx.db, config)


@pytest.mark.slow
def test_backfill_never_loads_transactions_after_as_of(
    client: Any, ctx: Container, runtime: Any
) -> None:
    history = generated(3000, seed=12)
    data = _with_future_rows(history)
    fs_id = feature_set(client, data)
    model_id = train(client, fs_id)

    # promotion: as_of is now, so the future rows stay out
    done = promote(client, model_id, online_state="replace")["backfill"]
    assert done["result"]["as_of"] <= pd.Timestamp.now(tz="UTC").isoformat()
    store = _store(ctx, fs_id)
    future_users = [("user", f"FUTURE-{i}") for i in range(10)]
    assert store.states(future_users) == {}
    user = ("user", str(history["user_id"].iloc[-1]))
    expected = backfill_states(history, FeatureConfig())[user]
    assert store.states([user])[user]["ts"] == expected["ts"]

    # a backfill as of the middle of the history: nothing at or after it
    cutoff = pd.Timestamp(history["timestamp"].median()).floor("s")
    with ctx.db.session() as s:
        model = s.get(MLModel, uuid.UUID(model_id))
    assert model is not None
    job_id = start_backfill(ctx, model, replace_live=True, as_of=cutoff.to_pydatetime())
    job = wait_for_job(client, f"{API}/jobs/{job_id}")
    assert job["status"] == "COMPLETED", job
    assert job["input"]["as_of"].startswith(cutoff.strftime("%Y-%m-%dT%H:%M"))
    earlier = history[history["timestamp"] < cutoff]
    users = [("user", str(u)) for u in history["user_id"].unique()[:50]]
    states = store.states(users)
    wanted = backfill_states(earlier, FeatureConfig())
    assert set(states) == {u for u in users if u in wanted}
    for key, state in states.items():
        assert state["last_ts"] < cutoff.value
        assert state["ts"] == wanted[key]["ts"]
