"""Blob storage that cannot be written: an upload answers 503 in the error envelope and
leaves no dataset behind, and /health says storage is failing instead of ok."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from shared.adapters.blobs.local import LocalBlobStore
from shared.container import Container
from shared.db.models import Dataset, DatasetVersion
from shared.ports import BlobStore
from tests.support.data import upload

API = "/api/v1/datasets"


def _break_local_store(store: LocalBlobStore) -> None:
    """The blobs folder becomes a regular file: every write under it fails with an
    OSError, as on a read-only or vanished mount (chmod means nothing to root)."""
    shutil.rmtree(store.root)
    store.root.write_bytes(b"not a folder")


def _closed_port_store() -> BlobStore:
    from shared.adapters.blobs.azure_blob import AzureBlobStore

    store = AzureBlobStore(
        "c",
        connection_string="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    store._container._config.retry_policy.total_retries = 0  # type: ignore[union-attr]
    return store


def _broken_store(ctx: Container) -> None:
    if isinstance(ctx.blobs, LocalBlobStore):
        _break_local_store(ctx.blobs)
    else:  # Azurite's stack: the same account on a port nothing listens on
        ctx.blobs = _closed_port_store()


def _no_dataset_rows(ctx: Container) -> None:
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Dataset)) == 0
        assert s.scalar(select(func.count()).select_from(DatasetVersion)) == 0


def test_upload_to_unwritable_storage_is_503_and_stores_nothing(
    client: Any, ctx: Container
) -> None:
    _broken_store(ctx)
    resp = upload(client, name="tx")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert set(body) == {"error", "meta"}
    assert body["error"]["code"] == "STORAGE_UNAVAILABLE"
    assert "storage" in body["error"]["message"].lower()
    _no_dataset_rows(ctx)
    assert client.get(API).json()["meta"]["pagination"]["total"] == 0


def test_health_probes_storage_and_reports_it_failing(
    client: Any, ctx: Container
) -> None:
    assert client.get("/api/v1/health").json()["data"]["storage"]["status"] == "ok"
    _broken_store(ctx)
    resp = client.get("/api/v1/health")
    assert resp.status_code == 503, resp.text
    data = resp.json()["data"]
    assert data["status"] == "degraded"
    assert data["storage"]["status"] != "ok"
    assert data["storage"]["error"]
    assert data["database"]["status"] == "ok"


def test_health_probe_leaves_no_blob_behind(client: Any, ctx: Container) -> None:
    for _ in range(3):
        assert client.get("/api/v1/health").status_code == 200
    assert ctx.blobs.list("") == []


def test_local_store_turns_os_errors_into_storage_errors(tmp_path: Path) -> None:
    from shared.ports import StorageError

    store = LocalBlobStore(tmp_path / "blobs")
    source = tmp_path / "src.bin"
    source.write_bytes(b"x")
    _break_local_store(store)
    with pytest.raises(StorageError):
        store.upload_file("datasets/a/v1.0/data.parquet", source)
    with pytest.raises(StorageError):
        store.put_bytes("datasets/a/meta.json", b"{}")


def test_upload_when_the_spool_folder_is_unwritable_is_503(
    client: Any, ctx: Container, tmp_path: Path
) -> None:
    """Uploads wait on disk under the data dir; a disk that cannot take them is the
    server's trouble (503), not a malformed request or an internal error."""
    blocked = tmp_path / "spool-is-a-file"
    blocked.write_bytes(b"")
    ctx.settings.upload_spool_dir = blocked
    resp = upload(client, name="tx")
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert "disk" in error["message"]
    _no_dataset_rows(ctx)
