"""The blob store contract, on the local folder and on Azurite."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.ports import BlobNotFound, BlobStore, StorageError


def test_round_trip_list_and_delete(blobs: BlobStore, tmp_path: Path) -> None:
    blobs.ping()
    source = tmp_path / "src.bin"
    payload = bytes(range(256)) * 40_000  # 10 MB: several blocks on Azure
    source.write_bytes(payload)
    blobs.upload_file("datasets/a/v1.0/data.parquet", source)
    blobs.put_bytes("datasets/a/v1.0/meta.json", b"{}")
    blobs.put_bytes("datasets/b/v1.0/data.parquet", b"other")

    assert blobs.exists("datasets/a/v1.0/data.parquet")
    assert not blobs.exists("datasets/a/v9.0/data.parquet")
    assert blobs.list("datasets/a/") == [
        "datasets/a/v1.0/data.parquet",
        "datasets/a/v1.0/meta.json",
    ]
    target = tmp_path / "out.bin"
    blobs.download_file("datasets/a/v1.0/data.parquet", target)
    assert target.read_bytes() == payload
    assert blobs.get_bytes("datasets/a/v1.0/meta.json") == b"{}"

    assert blobs.delete_prefix("datasets/a/") == 2
    assert blobs.list("datasets/a/") == []
    assert blobs.list("datasets/") == ["datasets/b/v1.0/data.parquet"]


def test_missing_blob_and_guard_rails(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(BlobNotFound):
        blobs.get_bytes("nope/missing.bin")
    with pytest.raises(BlobNotFound):
        blobs.download_file("nope/missing.bin", tmp_path / "x")
    with pytest.raises(StorageError):
        blobs.delete_prefix("/")
    assert blobs.delete_prefix("nothing/here/") == 0


def test_local_store_refuses_paths_outside_its_root(tmp_path: Path) -> None:
    from shared.adapters.blobs.local import LocalBlobStore

    store = LocalBlobStore(tmp_path / "root")
    with pytest.raises(StorageError):
        store.put_bytes("../escape.txt", b"x")


def test_unreachable_azure_store_reports_storage_error() -> None:
    from shared.adapters.blobs.azure_blob import AzureBlobStore

    store = AzureBlobStore(
        "c",
        connection_string="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    store._container._config.retry_policy.total_retries = 0
    with pytest.raises(StorageError):
        store.ping()
