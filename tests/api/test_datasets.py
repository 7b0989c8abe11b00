"""Every dataset endpoint, on the embedded stack (SQLite + folder) and the Azure stack
(PostgreSQL + Azurite)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared.container import Container
from tests.support.data import CSV, parquet_bytes, upload

API = "/api/v1/datasets"


def _data(resp: Any) -> Any:
    body = resp.json()
    assert set(body) == {"data", "meta"}, body
    assert body["meta"]["request_id"] and body["meta"]["timestamp"]
    return body["data"]


def test_upload_csv_creates_dataset_with_schema_and_blob(
    client: Any, ctx: Container
) -> None:
    resp = upload(client, name="fraud_train_v1", description="January")
    assert resp.status_code == 201, resp.text
    data = _data(resp)
    assert data["name"] == "fraud_train_v1"
    assert data["description"] == "January"
    assert data["version"] == "1.0"
    assert data["row_count"] == 3
    assert data["storage_path"] == f"datasets/{data['id']}/v1.0/data.parquet"
    types = {c["name"]: c["type"] for c in data["schema"]["columns"]}
    assert types == {
        "transaction_id": "string",
        "user_id": "string",
        "amount": "float",
        "timestamp": "timestamp",
        "device_type": "string",
        "is_fraud": "int",
    }
    assert ctx.blobs.exists(data["storage_path"])
    assert [v["version"] for v in data["versions"]] == ["1.0"]


def test_upload_parquet(client: Any) -> None:
    resp = upload(
        client, content=parquet_bytes(7), filename="x.parquet", content_type=""
    )
    assert resp.status_code == 201, resp.text
    data = _data(resp)
    assert data["row_count"] == 7
    assert data["versions"][0]["source_format"] == "parquet"


def test_a_large_upload_goes_to_disk_without_warnings(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Over a megabyte the multipart parser spools the file to disk itself; the
    upload neither flushes it again nor logs the parser's warning about that."""
    rows = CSV.splitlines()
    body = b"\n".join([rows[0], *rows[1:] * 20_000]) + b"\n"
    assert len(body) > 1024 * 1024
    with caplog.at_level(logging.WARNING):
        resp = upload(client, content=body)
    assert resp.status_code == 201, resp.text
    assert _data(resp)["row_count"] == 3 * 20_000
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_list_paginates_and_filters_by_name(client: Any) -> None:
    for name in ("alpha_1", "alpha_2", "beta_1"):
        assert upload(client, name=name).status_code == 201
    resp = client.get(API, params={"page": 1, "page_size": 2})
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["data"]) == 2
    assert body["meta"]["pagination"] == {
        "page": 1,
        "page_size": 2,
        "total": 3,
        "total_pages": 2,
    }
    second = client.get(API, params={"page": 2, "page_size": 2}).json()["data"]
    assert len(second) == 1
    names = {d["name"] for d in body["data"]} | {d["name"] for d in second}
    assert names == {"alpha_1", "alpha_2", "beta_1"}
    filtered = client.get(API, params={"name": "alpha"}).json()
    assert sorted(d["name"] for d in filtered["data"]) == ["alpha_1", "alpha_2"]
    assert filtered["meta"]["pagination"]["total"] == 2


def test_get_schema_and_preview(client: Any) -> None:
    dataset_id = _data(upload(client))["id"]
    got = _data(client.get(f"{API}/{dataset_id}"))
    assert got["id"] == dataset_id and got["row_count"] == 3
    schema = _data(client.get(f"{API}/{dataset_id}/schema"))
    assert [c["name"] for c in schema["columns"]][:3] == [
        "transaction_id",
        "user_id",
        "amount",
    ]
    preview = _data(client.get(f"{API}/{dataset_id}/preview", params={"rows": 2}))
    assert preview["returned"] == 2
    assert preview["rows"][0]["transaction_id"] == "T1"
    assert preview["rows"][1]["amount"] == 250.0
    assert preview["rows"][0]["timestamp"].startswith("2026-01-01T10:00:00")


def test_preview_rows_are_bounded(client: Any) -> None:
    dataset_id = _data(upload(client))["id"]
    for rows in (0, -1, 501):
        resp = client.get(f"{API}/{dataset_id}/preview", params={"rows": rows})
        assert resp.status_code == 422
        assert resp.json()["error"]["details"][0]["field"] == "rows"
    resp = client.get(f"{API}/{dataset_id}/preview", params={"rows": "many"})
    assert resp.status_code == 422


def test_new_version_keeps_history(client: Any, ctx: Container) -> None:
    dataset_id = _data(upload(client))["id"]
    more = CSV + b"T4,U3,99.00,2026-01-03T09:00:00Z,tablet,0\n"
    resp = upload(
        client,
        name=None,
        content=more,
        description="with T4",
        url=f"{API}/{dataset_id}/versions",
    )
    assert resp.status_code == 201, resp.text
    data = _data(resp)
    assert data["version"] == "2.0" and data["row_count"] == 4
    assert [v["version"] for v in data["versions"]] == ["1.0", "2.0"]
    assert data["versions"][1]["description"] == "with T4"
    assert ctx.blobs.exists(f"datasets/{dataset_id}/v1.0/data.parquet")
    assert ctx.blobs.exists(f"datasets/{dataset_id}/v2.0/data.parquet")
    old = _data(client.get(f"{API}/{dataset_id}/preview", params={"version": "1.0"}))
    assert old["total_rows"] == 3
    missing = client.get(f"{API}/{dataset_id}/schema", params={"version": "9.0"})
    assert missing.status_code == 404


def test_delete_removes_row_and_blobs(client: Any, ctx: Container) -> None:
    dataset_id = _data(upload(client))["id"]
    upload(client, name=None, url=f"{API}/{dataset_id}/versions")
    assert ctx.blobs.list(f"datasets/{dataset_id}/")
    resp = client.delete(f"{API}/{dataset_id}")
    assert resp.status_code == 204
    assert ctx.blobs.list(f"datasets/{dataset_id}/") == []
    assert client.get(f"{API}/{dataset_id}").status_code == 404
    assert client.delete(f"{API}/{dataset_id}").status_code == 404
    assert client.get(API).json()["meta"]["pagination"]["total"] == 0
