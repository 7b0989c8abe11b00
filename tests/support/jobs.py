"""Waiting for jobs through the public API, as a client would."""

from __future__ import annotations

import time
from typing import Any

FINISHED = {"COMPLETED", "FAILED", "CANCELLED"}


def wait_for_job(client: Any, url: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(url)
        assert resp.status_code == 200, resp.text
        seen = resp.json()["data"]
        if seen["status"] in FINISHED:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job did not finish in {timeout}s: {seen}")
