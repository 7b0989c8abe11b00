"""On Azure only API Management reaches the app: with a gateway secret set, a request
without it is refused in the envelope before any route runs (/predict's fast path
included), and the OpenAPI document the gateway imports stays open."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from functions.api.app import API_PREFIX, create_asgi_app
from shared.config import get_settings
from shared.container import Container

SECRET = "s3cret-from-the-gateway"


@pytest.fixture
def guarded(ctx: Container) -> Iterator[TestClient]:
    with TestClient(create_asgi_app(gateway_secret=SECRET)) as client:
        yield client


def _refused(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["error"]["code"] == "FORBIDDEN"
    assert "API Management" in body["error"]["message"]
    assert body["meta"]["request_id"] == resp.headers["x-request-id"]


def test_requests_without_the_gateway_secret_are_refused(guarded: TestClient) -> None:
    _refused(guarded.get(f"{API_PREFIX}/health"))
    _refused(guarded.get(f"{API_PREFIX}/health", headers={"x-gateway-secret": "guess"}))
    # the scoring path answers /predict ahead of the framework: refused before it
    _refused(guarded.post(f"{API_PREFIX}/predict", json={"transaction": {}}))
    resp = guarded.get(f"{API_PREFIX}/health", headers={"x-gateway-secret": SECRET})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["status"] == "ok"


def test_the_openapi_document_stays_open_for_the_gateway_import(
    guarded: TestClient,
) -> None:
    resp = guarded.get(f"{API_PREFIX}/openapi.json")
    assert resp.status_code == 200
    assert f"{API_PREFIX}/predict" in resp.json()["paths"]


def test_the_secret_comes_from_the_setting(
    ctx: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SH_GATEWAY_SECRET", SECRET)
    get_settings.cache_clear()
    try:
        with TestClient(create_asgi_app()) as client:
            _refused(client.get(f"{API_PREFIX}/health"))
            ok = client.get(
                f"{API_PREFIX}/health", headers={"x-gateway-secret": SECRET}
            )
            assert ok.status_code == 200
    finally:
        monkeypatch.delenv("SH_GATEWAY_SECRET")
        get_settings.cache_clear()
    with TestClient(create_asgi_app()) as client:  # unset: no gateway in front
        assert client.get(f"{API_PREFIX}/health").status_code == 200


def test_an_empty_secret_is_refused_rather_than_admitting_anyone() -> None:
    from functions.api.gateway import GatewayGuard

    with pytest.raises(ValueError, match="empty"):
        GatewayGuard(create_asgi_app(), "", frozenset())
