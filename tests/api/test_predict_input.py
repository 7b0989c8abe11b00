"""What the inference routes take, found by fuzzing: bodies /predict's own parser must
answer as the framework does, media types other than JSON, body limits, amounts and
times at the edges of what the features represent, and the request schemas that say
so. Every refusal is a 4xx in the envelope, logged like any other answer."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jsonschema_rs
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from functions.api.routes import predict as routes
from shared.adapters.blobs.factory import make_blob_store
from shared.config import Settings
from shared.container import Container, use
from shared.db.session import Database
from tests.support.serving import API, as_request, generated, serve

JSON = {"content-type": "application/json"}
SCORING = ("/predict", "/predict/explain", "/predict/batch")
ROUTES = (*SCORING, "/predictions/labels")
GOOD = {
    "transaction_id": "T1",
    "amount": 12.5,
    "user_id": "U1",
    "timestamp": "2026-01-17T15:00:00Z",
}


@pytest.fixture
def embedded(tmp_path: Path, sqlite_template: Path) -> Iterator[TestClient]:
    """The app as served, on SQLite and a folder, without a model: every answer here
    is decided before one is needed."""
    from functions.api.app import create_asgi_app

    shutil.copyfile(sqlite_template, tmp_path / "test.db")
    db = Database(f"sqlite:///{tmp_path / 'test.db'}")
    settings = Settings(data_dir=tmp_path / "data", log_json=False)
    context = Container(settings=settings, db=db, blobs=make_blob_store(settings))
    use(context)
    try:
        with TestClient(create_asgi_app(), raise_server_exceptions=False) as client:
            yield client
    finally:
        context.close()
        use(None)
        db.dispose()


def _error(resp: Any) -> tuple[int, str]:
    """(status, error code), checking the answer is the envelope."""
    assert resp.headers["content-type"].startswith("application/json"), resp.text
    body = resp.json()
    assert set(body) == {"error", "meta"}, body
    assert body["meta"]["request_id"] == resp.headers["x-request-id"]
    return resp.status_code, body["error"]["code"]


def _body(route: str, txn: Any) -> dict[str, Any]:
    if route == "/predict/batch":
        return {"transactions": [txn]}
    return {"transaction": txn}


def _field(route: str, name: str) -> str:
    prefix = "transactions.0" if route == "/predict/batch" else "transaction"
    return f"{prefix}.{name}"


# ------------------------------------------------------------------ bodies


def _streamed(body: bytes) -> Iterator[bytes]:
    """Sent chunked, without a Content-Length."""
    for start in range(0, len(body), 16 * 1024):
        yield body[start : start + 16 * 1024]


OVERSIZED = json.dumps({"transaction": {**GOOD, "note": "x" * 70_000}}).encode()
UNREADABLE: dict[str, bytes] = {
    "not UTF-8": b'{"transaction": {"transaction_id": "\xff\xfe"}}',
    "UTF-16 with a BOM": '\ufeff{"transaction": 1}'.encode("utf-16"),
    "UTF-16 BOM, truncated": b"\xff\xfe{",
    "5,000-digit number": b'{"transaction": {"amount": ' + b"9" * 5000 + b"}}",
    "nested 20,000 deep": b'{"transaction": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "empty": b"",
    "syntax error": b"{not json",
}


@pytest.mark.parametrize("name", list(UNREADABLE))
def test_predict_answers_a_body_it_cannot_read_as_explain_does(
    embedded: TestClient, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO, logger="shadow_hubble.http")
    answers = []
    for route in ("/predict", "/predict/explain"):
        resp = embedded.post(f"{API}{route}", content=UNREADABLE[name], headers=JSON)
        answers.append(_error(resp))
        logged = [
            r for r in caplog.records if getattr(r, "path", None) == f"{API}{route}"
        ]
        assert [getattr(r, "status", None) for r in logged] == [resp.status_code]
    assert answers[0] == answers[1]
    assert answers[0][0] in (400, 422), answers


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
def test_a_body_over_the_limit_is_refused_413_in_the_envelope(
    embedded: TestClient, streamed: bool
) -> None:
    for route in ("/predict", "/predict/explain"):
        content: Any = _streamed(OVERSIZED) if streamed else OVERSIZED
        resp = embedded.post(f"{API}{route}", content=content, headers=JSON)
        assert _error(resp) == (413, "PAYLOAD_TOO_LARGE"), route
    # a batch or labels body of that size is fine: their limits fit 10,000 items
    for route in ("/predict/batch", "/predictions/labels"):
        resp = embedded.post(f"{API}{route}", content=OVERSIZED, headers=JSON)
        assert _error(resp)[0] == 422, route
    batch = (b'{"transactions": [' + b"1," * (routes.BATCH_MAX_BYTES // 2)) + b"1]}"
    resp = embedded.post(f"{API}/predict/batch", content=batch, headers=JSON)
    assert _error(resp) == (413, "PAYLOAD_TOO_LARGE")


def test_the_largest_batch_fits_the_batch_body_limit() -> None:
    longest = {
        **GOOD,
        **{k: "x" * 255 for k in ("transaction_id", "user_id", "merchant_id")},
        "device_id": "x" * 255,
        **{k: "y" * 100 for k in ("merchant_category", "device_type", "location")},
        "payment_method": "y" * 100,
        "amount": 123456789.125,
        "timestamp": "2026-01-17T15:00:00.123456+05:30",
    }
    body = json.dumps({"transactions": [longest] * 10_000}, indent=2)
    assert len(body.encode()) < routes.BATCH_MAX_BYTES
    assert len(json.dumps({"transaction": longest}, indent=2)) < 4 * 1024


# ------------------------------------------------------------------ media types

NOT_JSON = {
    "text/plain": b'{"transaction": {}}',
    "application/xml": b"<transaction><amount>5</amount></transaction>",
    "application/x-www-form-urlencoded": b"transaction_id=T1&amount=5",
    "multipart/form-data; boundary=b": b'--b\r\nContent-Disposition: form-data; name="a"'
    b"\r\n\r\n1\r\n--b--\r\n",
    "": b'{"transaction": {}}',
}


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_not_declared_json_is_refused_415(
    embedded: TestClient, route: str
) -> None:
    for media, content in NOT_JSON.items():
        headers = {"content-type": media} if media else {}
        resp = embedded.post(f"{API}{route}", content=content, headers=headers)
        assert _error(resp) == (415, "UNSUPPORTED_MEDIA_TYPE"), media
        assert resp.json()["error"]["details"][0]["field"] == "content-type"
    # JSON with parameters, or a +json type, is JSON: refused for what it says
    for media in ("application/json; charset=utf-8", "application/problem+json"):
        resp = embedded.post(
            f"{API}{route}", content=b"{}", headers={"content-type": media}
        )
        assert _error(resp) == (422, "VALIDATION_ERROR"), media


# ------------------------------------------------------------------ the schemas


def test_the_api_bounds_are_the_features_bounds() -> None:
    from ml.features import config

    assert routes.MAX_AMOUNT == config.MAX_AMOUNT
    assert routes.MIN_TIMESTAMP == config.MIN_TIMESTAMP
    assert routes.MAX_TIMESTAMP == config.MAX_TIMESTAMP


def test_the_document_declares_the_items_bounds_and_errors(
    embedded: TestClient,
) -> None:
    doc = embedded.get(f"{API}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    txn = schemas["TransactionIn"]["properties"]
    assert txn["amount"]["maximum"] == routes.MAX_AMOUNT
    assert txn["timestamp"]["format"] == "date-time"
    assert "2200-01-01" in txn["timestamp"]["description"]
    items = schemas["BatchRequest"]["properties"]["transactions"]
    # a batch item: a transaction and, optionally, its protected attributes
    assert items["items"] == {"$ref": "#/components/schemas/BatchTransactionIn"}
    batch_item = schemas["BatchTransactionIn"]["properties"]
    assert batch_item["amount"] == txn["amount"]
    assert batch_item["protected_attributes"]["anyOf"][0]["type"] == "object"
    assert (items["minItems"], items["maxItems"]) == (1, 10_000)
    for route in ROUTES:
        responses = doc["paths"][f"{API}{route}"]["post"]["responses"]
        for status in ("400", "413", "415", "422"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema["$ref"].endswith("/ErrorEnvelope"), (route, status)
    for route in SCORING:
        assert "404" in doc["paths"][f"{API}{route}"]["post"]["responses"]


LABELS = [
    {"transaction_id": "T1", "label": True},
    {"prediction_id": "00000000-0000-4000-8000-000000000001", "label": False},
    {"label": True},
    {"transaction_id": "T1", "prediction_id": "00000000-0000-4000-8000-0000000000aa",
     "label": True},
    {"transaction_id": None, "prediction_id": "00000000-0000-4000-8000-000000000001",
     "label": True},
    {"transaction_id": "T1", "prediction_id": None, "label": True},
    {"prediction_id": None, "label": True},
    {"prediction_id": "not-a-uuid", "label": True},
    {"transaction_id": "", "label": True},
    {"transaction_id": "T1", "label": True, "note": 1},
    {"transaction_id": "T1", "label": 1},
    {"transaction_id": "T1", "label": "true"},
]  # fmt: skip


def test_a_label_is_accepted_exactly_when_the_document_says_it_is_valid(
    embedded: TestClient,
) -> None:
    """Exactly one of prediction_id and transaction_id: the schema says it (oneOf), and
    the route takes what the schema allows and refuses the rest."""
    doc = embedded.get(f"{API}/openapi.json").json()
    schema = doc["components"]["schemas"]["LabelIn"]
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    verdicts = []
    for label in LABELS:
        resp = embedded.post(
            f"{API}/predictions/labels", json={"labels": [label]}, headers=JSON
        )
        valid = validator.is_valid(label)
        verdicts.append(valid)
        assert resp.status_code == (200 if valid else 422), (label, resp.text)
        if not valid:
            assert _error(resp)[1] == "VALIDATION_ERROR"
            assert resp.json()["error"]["details"][0]["field"].startswith("labels.0")
    assert verdicts[:2] == [True, True] and not any(verdicts[2:])


# ------------------------------------------------------------------ time and amount

BAD_TIMES: list[Any] = [
    0,
    1_768_662_000,
    1.5e9,
    "1768662000",
    "2026-01-17",
    "1969-12-31T23:59:59Z",
    "1970-01-01T04:00:00+05:00",
    "2200-01-01T00:00:00Z",
    "2262-04-12T00:00:00Z",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59Z",
]
GOOD_TIMES = [
    "2026-01-17T15:00:00Z",
    "2026-01-17T15:00:00",
    "2026-01-17T15:00:00.123456+05:30",
    "2026-01-17 15:00:00",
    "1970-01-01T00:00:00Z",
    "2199-12-31T23:59:59.999999Z",
]
BAD_AMOUNTS = [routes.MAX_AMOUNT * (1 + 1e-15), 1e13, 1e200, 1e308]


@pytest.mark.parametrize("route", SCORING)
def test_times_and_amounts_out_of_range_are_refused_naming_the_field(
    embedded: TestClient, route: str
) -> None:
    """Refused before a model is looked up (there is none): 422, not 409 or 500."""
    for when in BAD_TIMES:
        body = _body(route, {**GOOD, "timestamp": when})
        resp = embedded.post(f"{API}{route}", json=body)
        assert _error(resp) == (422, "VALIDATION_ERROR"), (when, resp.text)
        fields = [d["field"] for d in resp.json()["error"]["details"]]
        assert fields == [_field(route, "timestamp")], when
    for amount in BAD_AMOUNTS:
        resp = embedded.post(
            f"{API}{route}", json=_body(route, {**GOOD, "amount": amount})
        )
        assert _error(resp) == (422, "VALIDATION_ERROR"), amount
        fields = [d["field"] for d in resp.json()["error"]["details"]]
        assert fields == [_field(route, "amount")], amount
    for when in GOOD_TIMES:  # valid: on to the model, of which there is none
        body = _body(route, {**GOOD, "timestamp": when, "amount": routes.MAX_AMOUNT})
        resp = embedded.post(f"{API}{route}", json=body)
        assert _error(resp) == (409, "NO_PRODUCTION_MODEL"), (when, resp.text)


# ------------------------------------------------------------------ with a model

HISTORY = 2500


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generated(3000)


def test_edge_values_score_on_every_route_and_leave_explanations_working(
    client: Any, ctx: Container, runtime: Any, transactions: pd.DataFrame
) -> None:
    serve(client, transactions.iloc[:HISTORY])
    rows = cast(list[dict[str, Any]], transactions.iloc[HISTORY:].to_dict("records"))
    live = [as_request(r) for r in rows]
    merchant = live[0]["merchant_id"]

    # batches where no item has a merchant, or a device, or either; and mixed ones
    def without(txns: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in t.items() if k not in names} for t in txns]

    start = 1
    for names in (("merchant_id",), ("device_id",), ("merchant_id", "device_id")):
        batch = without(live[start : start + 20], *names)
        resp = client.post(f"{API}/predict/batch", json={"transactions": batch})
        assert resp.status_code == 200, (names, resp.text)
        assert resp.json()["data"]["count"] == 20
        start += 20
    mixed = live[start : start + 20]
    mixed = [
        {k: v for k, v in t.items() if (i % 4, k) not in {(1, "merchant_id"),
         (2, "device_id"), (3, "merchant_id"), (3, "device_id")}}
        for i, t in enumerate(mixed)
    ]  # fmt: skip
    resp = client.post(f"{API}/predict/batch", json={"transactions": mixed})
    assert resp.status_code == 200, resp.text
    start += 20

    # the largest amount, again and again, on one merchant, by single and batch
    for i, txn in enumerate(live[start : start + 10]):
        big = {**txn, "merchant_id": merchant, "amount": routes.MAX_AMOUNT}
        route = "/predict" if i % 2 else "/predict/explain"
        resp = client.post(f"{API}{route}", json={"transaction": big})
        assert resp.status_code == 200, resp.text
    start += 10
    batch = [
        {**t, "merchant_id": merchant, "amount": routes.MAX_AMOUNT}
        for t in live[start : start + 10]
    ]
    assert client.post(f"{API}/predict/batch", json={"transactions": batch}).is_success
    start += 10
    # another customer at that merchant: explained, every value finite
    other = {**live[start], "merchant_id": merchant, "user_id": "someone-else"}
    resp = client.post(f"{API}/predict/explain", json={"transaction": other})
    assert resp.status_code == 200, resp.text
    explanation = resp.json()["data"]["explanation"]
    values = [explanation["base_value"], explanation["raw_score"]] + [
        v for f in explanation["top_features"] for v in (f["value"], f["contribution"])
    ]
    assert all(isinstance(v, float | int) for v in values), values
    assert np.isfinite(np.asarray(values, dtype=np.float64)).all()
