"""Retraining through the API: generated data whose fraud changes half way, a champion
trained on the first half, and helpers that trigger a retraining and wait for it."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from ml.datagen import GeneratorConfig, generate_transactions
from ml.datagen.config import DriftConfig
from tests.support.data import upload
from tests.support.jobs import wait_for_job
from tests.support.serving import API, feature_set, train

CHANGE_DAY = 30


def changing_fraud(n_rows: int = 8000, seed: int = 21) -> pd.DataFrame:
    """60 days from 2026-01-01; a new fraud pattern from day 30 on."""
    return generate_transactions(
        GeneratorConfig(
            n_rows=n_rows,
            n_users=500,
            n_merchants=60,
            days=60,
            seed=seed,
            target_fraud_rate=0.04,
            drift=DriftConfig(new_fraud_pattern_day=CHANGE_DAY),
        )
    )


def before_change(df: pd.DataFrame) -> pd.DataFrame:
    cut = pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=CHANGE_DAY)
    ts = pd.to_datetime(df["timestamp"], utc=True)
    return df[ts < cut].reset_index(drop=True)


def upload_frame(client: Any, name: str, df: pd.DataFrame) -> str:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    resp = upload(client, name=name, content=buf.getvalue(), filename=f"{name}.parquet")
    assert resp.status_code == 201, resp.text
    return str(resp.json()["data"]["id"])


def champion(client: Any, history: pd.DataFrame) -> str:
    """A model trained on ``history`` (not promoted)."""
    return train(client, feature_set(client, history))


def trigger(client: Any, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(f"{API}/retraining/trigger", json=body)
    assert resp.status_code == 202, resp.text
    accepted: dict[str, Any] = resp.json()["data"]
    assert accepted["status"] == "PENDING"
    return accepted


def retrain(client: Any, body: dict[str, Any], timeout: float = 240) -> dict[str, Any]:
    """Trigger and wait for the job's end (polling GET /retraining/jobs/{id})."""
    job_id = trigger(client, body)["job_id"]
    return wait_for_job(client, f"{API}/retraining/jobs/{job_id}", timeout)
