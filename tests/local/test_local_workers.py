"""`python -m local --workers 2`: two processes on one port; a job created through the
secondary runs on the primary's engine; predictions of both land in one log."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.serving import API, PARAMS, as_request, generated

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(client: httpx.Client, url: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data: dict[str, Any] = client.get(url).json()["data"]
        if data["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return data
        time.sleep(0.2)
    raise AssertionError(f"{url} did not finish")


def _client_on(base: str, pid: int, timeout: float = 30) -> httpx.Client:
    """A keep-alive client whose connection landed on the worker with ``pid``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = httpx.Client(base_url=base, timeout=60)
        if client.get(f"{API}/health").json()["data"]["worker"]["pid"] == pid:
            return client
        client.close()
    raise AssertionError(f"no connection reached worker {pid}")


def test_two_workers_share_the_port_jobs_and_the_prediction_log(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SH_DATA_DIR": str(tmp_path / "data"),
        "SH_LOG_LEVEL": "WARNING",
        "SH_MODEL_REFRESH_SECONDS": "0",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
    )
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                with httpx.Client(base_url=base) as probe:
                    pids.add(probe.get(f"{API}/health").json()["data"]["worker"]["pid"])
            except httpx.TransportError:
                time.sleep(0.1)
        assert len(pids) == 2, pids
        secondary = _client_on(base, next(p for p in pids if p != server.pid))

        # a whole model life cycle through the secondary: its jobs run on the primary
        df = generated(3000)
        buf = io.BytesIO()
        df.iloc[:2500].to_parquet(buf, index=False)
        files = {"file": ("tx.parquet", buf.getvalue(), "application/octet-stream")}
        dataset = secondary.post(f"{API}/datasets", data={"name": "tx"}, files=files)
        assert dataset.status_code == 201, dataset.text
        body = {"dataset_id": dataset.json()["data"]["id"]}
        job = secondary.post(f"{API}/features/compute", json=body).json()["data"]
        fs = _wait(secondary, f"{API}/features/jobs/{job['job_id']}")
        assert fs["status"] == "COMPLETED", fs
        train = {
            "name": "fraud",
            "feature_set_id": fs["feature_set_id"],
            "algorithm": "xgboost",
            "hyperparameters": PARAMS["xgboost"],
        }
        job = secondary.post(f"{API}/training/jobs", json=train).json()["data"]
        trained = _wait(secondary, f"{API}/training/jobs/{job['job_id']}")
        assert trained["status"] == "COMPLETED", trained
        promoted = secondary.post(
            f"{API}/models/{trained['model_id']}/promote",
            json={"stage": "production", "reason": "test"},
        ).json()["data"]
        backfill = _wait(secondary, f"{API}/jobs/{promoted['online_backfill_job_id']}")
        assert backfill["status"] == "COMPLETED", backfill

        # scoring from both workers, alternating
        primary = _client_on(base, server.pid)
        live = [as_request(r) for r in df.iloc[2500:2700].to_dict("records")]
        for i, txn in enumerate(live):
            worker = (primary, secondary)[i % 2]
            resp = worker.post(f"{API}/predict", json={"transaction": txn})
            assert resp.status_code == 200, resp.text
        primary.close()
        secondary.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    assert server.returncode == 0

    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'shadow_hubble.db'}")
    with engine.connect() as conn:
        logged = conn.execute(text("SELECT count(*) FROM predictions")).scalar_one()
    engine.dispose()
    assert logged == len(live)  # both workers flushed their logs at shutdown


def test_a_server_stopped_while_its_worker_starts_stops_without_errors(
    tmp_path: Path,
) -> None:
    """SIGINT as soon as the primary answers (its secondary worker is still starting,
    as in the benchmark's cold starts): both processes stop, exit 0, and log neither
    a traceback nor an error."""
    port = _free_port()
    env = {**os.environ, "SH_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "server.log"
    with out.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}{API}/health", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    log = out.read_text(encoding="utf-8")
    assert server.returncode == 0, log
    assert "Shutting down" in log  # the primary's graceful shutdown ran
    assert "Traceback" not in log, log
    assert '"level": "ERROR"' not in log, log
