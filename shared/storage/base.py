"""The blob store interface: one implementation per backend (local folder, Azure Blob)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """A blob operation failed; callers turn it into a 5xx or a FAILED job."""


class BlobNotFound(StorageError):
    pass


class BlobStore(Protocol):
    """Paths are '/'-separated keys such as ``datasets/{id}/v1.0/data.parquet``."""

    def upload_file(self, path: str, source: Path) -> None:
        """Store a local file under ``path``, streamed rather than read whole."""

    def download_file(self, path: str, target: Path) -> None:
        """Copy the blob at ``path`` to a local file (streamed)."""

    def put_bytes(self, path: str, data: bytes) -> None: ...

    def get_bytes(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def list(self, prefix: str) -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; return how many went."""

    def ping(self) -> None:
        """Raise StorageError when the store cannot be reached."""
