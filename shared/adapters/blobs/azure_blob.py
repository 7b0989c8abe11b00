"""Blob store on Azure Blob Storage (Azurite in tests), by connection string or identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.ports import BlobNotFound, StorageError

_CHUNK = 8 * 1024 * 1024


class AzureBlobStore:
    def __init__(
        self,
        container: str,
        connection_string: str | None = None,
        account_url: str | None = None,
    ) -> None:
        from azure.storage.blob import BlobServiceClient

        if connection_string:
            service = BlobServiceClient.from_connection_string(
                connection_string, max_single_put_size=_CHUNK, max_block_size=_CHUNK
            )
        elif account_url:
            # Managed identity on Azure, developer login or env credentials elsewhere.
            from azure.identity import DefaultAzureCredential

            service = BlobServiceClient(
                account_url,
                credential=DefaultAzureCredential(),
                max_single_put_size=_CHUNK,
                max_block_size=_CHUNK,
            )
        else:
            raise StorageError(
                "Azure storage needs SH_STORAGE_CONNECTION_STRING or SH_STORAGE_ACCOUNT_URL"
            )
        self._container = service.get_container_client(container)
        self._ensured = False

    def _ensure_container(self) -> None:
        if self._ensured:
            return
        from azure.core.exceptions import ResourceExistsError

        try:
            self._container.create_container()
        except ResourceExistsError:
            pass
        self._ensured = True

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._ensure_container()
            return fn(*args, **kwargs)
        except ResourceNotFoundError as exc:
            raise BlobNotFound(str(args[0]) if args else "blob") from exc
        except AzureError as exc:
            raise StorageError(f"blob storage error: {exc}") from exc

    def upload_file(self, path: str, source: Path) -> None:
        def upload() -> None:
            with open(source, "rb") as fh:
                self._container.upload_blob(path, fh, overwrite=True, max_concurrency=2)

        self._call(upload)

    def download_file(self, path: str, target: Path) -> None:
        def download(name: str) -> None:
            with open(target, "wb") as fh:
                self._container.download_blob(name, max_concurrency=2).readinto(fh)

        self._call(download, path)

    def put_bytes(self, path: str, data: bytes) -> None:
        self._call(self._container.upload_blob, path, data, overwrite=True)

    def get_bytes(self, path: str) -> bytes:
        def get(name: str) -> bytes:
            return bytes(self._container.download_blob(name).readall())

        result: bytes = self._call(get, path)
        return result

    def exists(self, path: str) -> bool:
        result: bool = self._call(
            lambda: self._container.get_blob_client(path).exists()
        )
        return result

    def list(self, prefix: str) -> list[str]:
        def names() -> list[str]:
            return sorted(
                b.name for b in self._container.list_blobs(name_starts_with=prefix)
            )

        result: list[str] = self._call(names)
        return result

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError("refusing to delete the whole container")
        names = self.list(prefix)
        for name in names:
            self._call(self._container.delete_blob, name, delete_snapshots="include")
        return len(names)

    def ping(self) -> None:
        self._call(self._container.get_container_properties)
