"""Bad input to the dataset API: a 4xx in the error envelope and nothing half-written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.container import Container
from shared.db.models import Dataset, DatasetVersion
from shared.ports import StorageError
from tests.support.data import CSV, upload

API = "/api/v1/datasets"


def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "meta"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["meta"]["request_id"] == resp.headers["x-request-id"]
    return body["error"]  # type: ignore[no-any-return]


def _nothing_stored(ctx: Container) -> None:
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 0
        assert s.scalar(select(func.count()).select_from(DatasetVersion)) == 0
    assert ctx.blobs.list("datasets/") == []


@pytest.mark.parametrize(
    ("content", "filename", "needle"),
    [
        (b"", "empty.csv", "empty"),
        (b"\n\n  \n", "blank.csv", "empty"),
        (b"a,b,c\n", "header_only.csv", "no data rows"),
        (b"a,b\n1,2\n3,4,5\n", "ragged.csv", "as many fields"),
        (b"name,city\nJos\xe9,Paris\n", "latin1.csv", "UTF-8"),
        (b"id,amount,amount\n1,2,3\n", "dupes.csv", "Duplicate column"),
        (b"id,,amount\n1,2,3\n", "blank_name.csv", "no name"),
        (b"PK\x03\x04\x00\x00junk", "x.xlsx", "CSV or a Parquet"),
        (b"not parquet at all", "fake.parquet", "not a Parquet"),
    ],
)
def test_bad_files_are_refused(
    client: Any, ctx: Container, content: bytes, filename: str, needle: str
) -> None:
    resp = upload(client, content=content, filename=filename, content_type="")
    assert resp.status_code in (415, 422), resp.text
    error = resp.json()["error"]
    assert needle.lower() in error["message"].lower(), error
    assert error["details"] and error["details"][0]["field"] == "file"
    _nothing_stored(ctx)


def test_upload_over_the_limit_is_413(client: Any, ctx: Container) -> None:
    big = CSV + b"T9,U9,1.00,2026-01-01T00:00:00Z,mobile,0\n" * 150_000  # ~6 MB > 5 MiB
    error = _error(upload(client, content=big), 413, "PAYLOAD_TOO_LARGE")
    assert "5 MiB" in error["message"]
    _nothing_stored(ctx)


def test_not_multipart_is_415(client: Any) -> None:
    resp = client.post(API, content=CSV, headers={"content-type": "text/csv"})
    _error(resp, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_missing_file_and_name(client: Any, ctx: Container) -> None:
    resp = client.post(API, data={"name": "x"}, files={"other": ("a.txt", b"x")})
    assert _error(resp, 422, "VALIDATION_ERROR")["details"][0]["field"] == "file"
    resp = upload(client, name="  ")
    assert _error(resp, 422, "VALIDATION_ERROR")["details"][0]["field"] == "name"
    _nothing_stored(ctx)


def test_duplicate_name_is_409(client: Any) -> None:
    first = upload(client, name="same").json()["data"]["id"]
    error = _error(upload(client, name="same"), 409, "CONFLICT")
    assert f"/datasets/{first}/versions" in error["message"]


@pytest.mark.parametrize(
    "dataset_id", ["0b9d6f7e-5c1a-4f3e-9d2b-7a6c5e4d3f21", "not-a-uuid"]
)
def test_unknown_dataset_is_404_everywhere(client: Any, dataset_id: str) -> None:
    for method, suffix in [
        ("get", ""),
        ("delete", ""),
        ("get", "/schema"),
        ("get", "/preview"),
    ]:
        _error(getattr(client, method)(f"{API}/{dataset_id}{suffix}"), 404, "NOT_FOUND")
    resp = upload(client, name=None, url=f"{API}/{dataset_id}/versions")
    _error(resp, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1000000}, "page_size"),
        ({"page": 0}, "page"),
        ({"page": "x"}, "page"),
    ],
)
def test_bad_pagination_is_422(client: Any, params: dict[str, Any], field: str) -> None:
    error = _error(client.get(API, params=params), 422, "VALIDATION_ERROR")
    assert error["details"][0]["field"] == field


def test_wrong_method_and_unknown_route(client: Any) -> None:
    _error(client.put(API), 405, "METHOD_NOT_ALLOWED")
    _error(client.get("/api/v1/nope"), 404, "NOT_FOUND")


class _FailingMidUpload:
    """Wraps a store: writes part of the blob, then fails like a dropped connection."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def upload_file(self, path: str, source: Path) -> None:
        self.inner.put_bytes(path, source.read_bytes()[:10])
        raise StorageError("connection reset during upload")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_storage_failure_mid_upload_leaves_nothing(client: Any, ctx: Container) -> None:
    ctx.blobs = _FailingMidUpload(ctx.blobs)  # type: ignore[assignment]
    resp = upload(client)
    _error(resp, 503, "STORAGE_UNAVAILABLE")
    _nothing_stored(ctx)


def test_storage_failure_on_new_version_keeps_the_old_one(
    client: Any, ctx: Container
) -> None:
    created = upload(client).json()["data"]
    inner = ctx.blobs
    ctx.blobs = _FailingMidUpload(inner)  # type: ignore[assignment]
    resp = upload(client, name=None, url=f"{API}/{created['id']}/versions")
    _error(resp, 503, "STORAGE_UNAVAILABLE")
    ctx.blobs = inner
    data = client.get(f"{API}/{created['id']}").json()["data"]
    assert data["version"] == "1.0"
    assert [v["version"] for v in data["versions"]] == ["1.0"]
    assert inner.list(f"datasets/{created['id']}/") == [created["storage_path"]]


def test_database_failure_after_blob_upload_removes_the_blob(
    client: Any, ctx: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.services import datasets

    real_store = datasets.DatasetService._store

    def store_then_fail(self: Any, *args: Any, **kwargs: Any) -> Any:
        real_store(self, *args, **kwargs)
        raise RuntimeError("database connection lost before commit")

    monkeypatch.setattr(datasets.DatasetService, "_store", store_then_fail)
    resp = upload(client)
    _error(resp, 500, "INTERNAL_ERROR")
    _nothing_stored(ctx)
