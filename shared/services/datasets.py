"""Dataset registry: ingest, version, describe, preview and delete transaction datasets.

Invariant: a dataset row exists iff its Parquet blob does. Blobs are written inside the
database transaction that creates the row and removed again if anything fails.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from shared.adapters.blobs.local_copy import local_file
from shared.db.models import Dataset, DatasetVersion
from shared.errors import Conflict, NotFound, ValidationFailed, field_error
from shared.services.dataset_delete import DatasetDeletion, parse_dataset_id
from shared.services.dataset_form import (
    check_description,
    check_name,
    clean_filename,
)
from shared.services.pagination import Page, check_page
from shared.services.upload_spool import Upload, upload_workdir
from shared.timefmt import iso

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.ports import BlobStore, DatasetRepository, Transactions
    from shared.services.tabular import ConvertedTable

log = logging.getLogger(__name__)


def dataset_path(dataset_id: uuid.UUID, version: str) -> str:
    return f"datasets/{dataset_id}/v{version}/data.parquet"


def version_to_dict(v: DatasetVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "description": v.description,
        "storage_path": v.storage_path,
        "row_count": v.row_count,
        "size_bytes": v.size_bytes,
        "source_format": v.source_format,
        "source_filename": v.source_filename,
        "created_at": iso(v.created_at),
    }


def dataset_to_dict(
    d: Dataset, versions: list[DatasetVersion] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(d.id),
        "name": d.name,
        "description": d.description,
        "version": d.version,
        "storage_path": d.storage_path,
        "row_count": d.row_count,
        "schema": d.schema,
        "status": d.status,
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
    }
    if versions is not None:
        out["versions"] = [version_to_dict(v) for v in versions]
    return out


def _get(datasets: DatasetRepository, dataset_id: str | uuid.UUID) -> Dataset:
    dataset = datasets.get(parse_dataset_id(dataset_id))
    if dataset is None or dataset.status == "DELETING":
        raise NotFound(f"Dataset {dataset_id} not found.")
    return dataset


class DatasetService:
    def __init__(
        self,
        uow: Transactions,
        blobs: BlobStore,
        settings: Settings,
        deletion: DatasetDeletion,
    ) -> None:
        self.uow = uow
        self.blobs = blobs
        self.settings = settings
        self.deletion = deletion

    @contextmanager
    def _converted(self, upload: Upload) -> Iterator[ConvertedTable]:
        # pyarrow loads on first upload, not when the Functions host indexes the app
        from shared.services.tabular import convert_upload, detect_format

        fmt = detect_format(upload.path, upload.filename, upload.content_type)
        with upload_workdir(self.settings, "ingest-") as tmp:
            yield convert_upload(upload.path, tmp / "data.parquet", fmt)

    def _store(
        self,
        datasets: DatasetRepository,
        dataset: Dataset,
        version: str,
        description: str | None,
        upload: Upload,
        table: ConvertedTable,
    ) -> DatasetVersion:
        """Add the version row and its blob in the caller's transaction."""
        path = dataset_path(dataset.id, version)
        record = DatasetVersion(
            dataset_id=dataset.id,
            version=version,
            description=description,
            storage_path=path,
            source_filename=clean_filename(upload.filename),
            source_format=table.source_format,
            size_bytes=upload.size,
            row_count=table.row_count,
            schema=table.schema,
        )
        dataset.version = version
        dataset.storage_path = path
        dataset.row_count = table.row_count
        dataset.schema = table.schema
        datasets.add_version(record)
        self.blobs.upload_file(path, table.path)
        return record

    def _cleanup(self, prefix: str) -> None:
        try:
            self.blobs.delete_prefix(prefix)
        except Exception:  # the original error matters more; leave a trace
            log.exception(
                "could not remove blobs under %s after a failed upload", prefix
            )

    def create(
        self, name: str | None, description: str | None, upload: Upload
    ) -> dict[str, Any]:
        name = check_name(name)
        description = check_description(description)
        with self.uow() as tx:
            existing = tx.datasets.id_named(name)
            if existing is not None:
                raise Conflict(
                    f"A dataset named {name!r} exists already ({existing}). "
                    f"Upload a new version with POST /datasets/{existing}/versions.",
                    field_error("name", "already exists"),
                )
        dataset_id = uuid.uuid4()
        with self._converted(upload) as table:
            try:
                with self.uow(write=True) as tx:
                    dataset = Dataset(
                        id=dataset_id,
                        name=name,
                        description=description,
                        storage_path="",
                    )
                    tx.datasets.add(dataset)
                    version = self._store(
                        tx.datasets, dataset, "1.0", description, upload, table
                    )
                    result = dataset_to_dict(dataset, [version])
            except BaseException:
                self._cleanup(f"datasets/{dataset_id}/")
                raise
        log.info("dataset %s created: %s rows", dataset_id, table.row_count)
        return result

    def add_version(
        self, dataset_id: str, description: str | None, upload: Upload
    ) -> dict[str, Any]:
        description = check_description(description)
        with self.uow() as tx:
            _get(tx.datasets, dataset_id)
        with (
            self._converted(upload) as table,
            self.uow(write=True) as tx,
        ):
            dataset = _get(tx.datasets, dataset_id)
            version = f"{tx.datasets.version_count(dataset.id) + 1}.0"
            try:
                self._store(tx.datasets, dataset, version, description, upload, table)
                tx.flush()
            except BaseException:
                self._cleanup(f"datasets/{dataset.id}/v{version}/")
                raise
            return dataset_to_dict(dataset, tx.datasets.versions(dataset.id))

    def list_datasets(
        self, page: int, page_size: int, name: str | None = None
    ) -> Page[dict[str, Any]]:
        check_page(page, page_size)
        with self.uow() as tx:
            result = tx.datasets.page(page, page_size, name or None)
            return Page(
                [dataset_to_dict(d) for d in result.items],
                result.page,
                result.page_size,
                result.total,
            )

    def get(self, dataset_id: str) -> dict[str, Any]:
        with self.uow() as tx:
            dataset = _get(tx.datasets, dataset_id)
            return dataset_to_dict(dataset, tx.datasets.versions(dataset.id))

    def version(self, dataset_id: str, version: str | None) -> DatasetVersion:
        """The requested version (default: latest) of a dataset."""
        with self.uow() as tx:
            dataset = _get(tx.datasets, dataset_id)
            wanted = version or dataset.version
            record = tx.datasets.version(dataset.id, wanted)
            if record is None:
                raise NotFound(
                    f"Dataset {dataset_id} has no version {wanted!r}.",
                    field_error("version", "unknown version"),
                )
            return record

    def schema(self, dataset_id: str, version: str | None = None) -> dict[str, Any]:
        record = self.version(dataset_id, version)
        return {
            "dataset_id": str(record.dataset_id),
            "version": record.version,
            "row_count": record.row_count,
            **record.schema,
        }

    def preview(
        self, dataset_id: str, rows: int, version: str | None = None
    ) -> dict[str, Any]:
        limit = self.settings.preview_max_rows
        if not 1 <= rows <= limit:
            raise ValidationFailed(
                f"rows must be between 1 and {limit}.",
                field_error("rows", f"must be between 1 and {limit}"),
            )
        from shared.services.tabular import read_head

        record = self.version(dataset_id, version)
        with local_file(self.blobs, record.storage_path) as path:
            data = read_head(path, rows)
        return {
            "dataset_id": str(record.dataset_id),
            "version": record.version,
            "columns": [c["name"] for c in record.schema["columns"]],
            "rows": data,
            "returned": len(data),
            "total_rows": record.row_count,
        }

    def delete(self, dataset_id: str, cascade: bool = False) -> None:
        """Delete the dataset, or refuse with 409 naming what depends on it; with
        ``cascade`` its feature sets and the models trained on them go too (see
        ``shared.services.dataset_delete``)."""
        self.deletion.delete(dataset_id, cascade)
