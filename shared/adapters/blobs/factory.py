"""Pick the blob store the settings ask for."""

from __future__ import annotations

from shared.config import Settings
from shared.ports import BlobStore


def make_blob_store(settings: Settings) -> BlobStore:
    if settings.resolved_storage_backend == "azure":
        from shared.adapters.blobs.azure_blob import AzureBlobStore

        return AzureBlobStore(
            settings.storage_container,
            connection_string=settings.storage_connection_string,
            account_url=settings.storage_account_url,
        )
    from shared.adapters.blobs.local import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs")
