"""/predict is answered ahead of the framework (``functions.api.scoring_path``): the
framework never sees it, and every answer, errors included, is the one the FastAPI
route gives for the same request."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.api.app import API_PREFIX, create_app, create_asgi_app
from functions.api.envelope import RequestIdMiddleware
from functions.api.routes.predict import PREDICT_MAX_BYTES
from functions.api.scoring_path import ScoringPath
from shared.container import Container
from tests.support.serving import API, as_request, generated, serve

HISTORY = 1500
JSON = {"content-type": "application/json"}


class _Seen:
    """The app behind the scoring path, noting the paths it is asked for."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


@pytest.fixture
def clients(ctx: Container) -> Iterator[tuple[TestClient, TestClient, _Seen]]:
    """(through the scoring path, the FastAPI app alone, what reached the app)."""
    seen = _Seen(create_app())
    fast = RequestIdMiddleware(ScoringPath(seen, API_PREFIX))
    with (
        TestClient(fast, raise_server_exceptions=False) as through_path,
        TestClient(create_app(), raise_server_exceptions=False) as framework,
    ):
        yield through_path, framework, seen


def _answer(resp: Any) -> tuple[int, Any]:
    body = resp.json()
    body.pop("meta")
    if "data" in body:  # per call: its timing, and whether it was the first
        for varying in ("latency_ms", "replayed"):
            body["data"].pop(varying)
    return resp.status_code, body


def test_predict_is_answered_ahead_of_the_framework_as_the_route_answers_it(
    clients: tuple[TestClient, TestClient, _Seen], runtime: Any
) -> None:
    through_path, framework, seen = clients
    history = generated(2000)
    live = [
        as_request(r) for r in history.iloc[HISTORY : HISTORY + 20].to_dict("records")
    ]
    good = live[0]
    nan = json.dumps({"transaction": {**good, "amount": float("nan")}})
    bodies: list[bytes | str] = [
        json.dumps({"transaction": good}),  # no production model yet: 409
        "",
        "{not json",
        "[]",
        '{"transaction": 5}',
        json.dumps({"transaction": {**good, "amount": -1}}),
        json.dumps({"transaction": {k: v for k, v in good.items() if k != "amount"}}),
        json.dumps({"transaction": good, "extra": 1}),
        nan,
    ]
    for body in bodies:
        got, want = (
            _answer(c.post(f"{API}/predict", content=body, headers=JSON))
            for c in (through_path, framework)
        )
        assert got == want, body
        assert got[0] >= 400
    serve(through_path, history.iloc[:HISTORY])
    unknown = {"transaction": good, "model_id": "00000000-0000-0000-0000-000000000000"}
    for body in (json.dumps(unknown), *(json.dumps({"transaction": t}) for t in live)):
        # first through the path, then the same transaction again through the
        # framework: a retry, which must return the same prediction
        got, want = (
            _answer(c.post(f"{API}/predict", content=body, headers=JSON))
            for c in (through_path, framework)
        )
        assert got == want, body
    assert (
        got[0] == 200 and got[1]["data"]["transaction_id"] == live[-1]["transaction_id"]
    )
    assert f"{API}/predict" not in seen.paths
    assert f"{API}/health" not in seen.paths
    through_path.get(f"{API}/health")
    assert seen.paths[-1] == f"{API}/health"  # everything else reaches the app
    # a body not declared JSON goes to the framework, which answers as it does
    undeclared = json.dumps({"transaction": good}).encode()
    resp = through_path.post(f"{API}/predict", content=undeclared)
    assert seen.paths[-1] == f"{API}/predict"
    assert _answer(resp) == _answer(
        framework.post(f"{API}/predict", content=undeclared)
    )
    assert resp.headers["x-request-id"]


def test_the_request_id_reaches_a_scoring_path_answer(client: TestClient) -> None:
    resp = client.post(
        f"{API}/predict",
        json={"transaction": {"transaction_id": "T"}},
        headers={"x-request-id": "abc-123"},
    )
    assert resp.status_code == 422
    assert resp.headers["x-request-id"] == "abc-123"
    assert resp.json()["meta"]["request_id"] == "abc-123"


def test_the_setting_off_hands_predict_to_the_framework(ctx: Container) -> None:
    """SH_SCORING_PATH=false: the FastAPI route answers /predict (the same answers,
    the test above), and a body declared too large is still refused in the envelope."""
    seen = _Seen(create_app())
    app = create_asgi_app(seen, scoring_path=False)
    with TestClient(app, raise_server_exceptions=False) as plain:
        resp = plain.post(f"{API}/predict", content="{not json", headers=JSON)
        assert resp.status_code == 422
        assert seen.paths == [f"{API}/predict"]
        oversized = b" " * (PREDICT_MAX_BYTES + 1)
        resp = plain.post(f"{API}/predict", content=oversized, headers=JSON)
        assert resp.status_code == 413
        assert resp.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert seen.paths == [f"{API}/predict"]
