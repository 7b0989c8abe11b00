"""Envelope, request ids in answers and logs, and the health endpoint."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared.container import Container
from shared.ports import StorageError


def test_request_id_is_echoed_and_logged(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    resp = client.get("/api/v1/datasets", headers={"X-Request-ID": "req-abc-123"})
    assert resp.headers["x-request-id"] == "req-abc-123"
    assert resp.json()["meta"]["request_id"] == "req-abc-123"
    access = [r for r in caplog.records if r.name == "shadow_hubble.http"]
    assert any(getattr(r, "request_id", None) == "req-abc-123" for r in access)


def test_unhandled_error_is_500_envelope_with_logged_request_id(
    client: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services import datasets

    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(datasets.DatasetService, "list_datasets", boom)
    caplog.set_level(logging.INFO)
    resp = client.get("/api/v1/datasets")
    assert resp.status_code == 500
    body = resp.json()
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert "kaboom" not in body["error"]["message"]
    rid = body["meta"]["request_id"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(getattr(r, "request_id", None) == rid for r in errors)


def test_json_log_lines_carry_request_id() -> None:
    from shared.logging_setup import JsonFormatter, request_id_var

    token = request_id_var.set("rid-9")
    try:
        record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
        record.request_id = request_id_var.get()
        line = JsonFormatter().format(record)
    finally:
        request_id_var.reset(token)
    assert '"request_id": "rid-9"' in line and '"message": "hello"' in line


def test_health_reports_database_and_storage(client: Any, ctx: Container) -> None:
    resp = client.get("/api/v1/health")
    assert resp.status_code == 200
    data = resp.json()["data"]
    assert data["status"] == "ok"
    assert data["database"]["status"] == "ok"
    assert data["database"]["backend"] in ("sqlite", "postgresql")
    assert data["storage"]["status"] == "ok"


def test_health_is_503_when_storage_is_down(client: Any, ctx: Container) -> None:
    class Down:
        def ping(self) -> None:
            raise StorageError("connection refused")

    ctx.blobs = Down()  # type: ignore[assignment]
    resp = client.get("/api/v1/health")
    assert resp.status_code == 503
    data = resp.json()["data"]
    assert data["status"] == "degraded"
    assert data["storage"]["status"] == "unreachable"
    assert "connection refused" in data["storage"]["error"]
