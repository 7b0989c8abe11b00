"""Blob store on a local folder: the embedded backend."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.ports import BlobNotFound, StorageError


@contextmanager
def _os_errors(action: str, path: str) -> Iterator[None]:
    """A folder that is read-only, full or gone fails like any other store: with a
    StorageError (answered 503), not an OSError (answered 500)."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StorageError(
            f"local storage could not {action} {path!r}: {reason}"
        ) from exc


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise StorageError(f"path escapes the store: {path}")
        return full

    def upload_file(self, path: str, source: Path) -> None:
        target = self._path(path)
        with _os_errors("write", path):
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copy to a temporary name, then rename: readers never see half a file.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def download_file(self, path: str, target: Path) -> None:
        source = self._path(path)
        if not source.is_file():
            raise BlobNotFound(path)
        with _os_errors("read", path):
            shutil.copyfile(source, target)

    def put_bytes(self, path: str, data: bytes) -> None:
        target = self._path(path)
        with _os_errors("write", path):
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)

    def get_bytes(self, path: str) -> bytes:
        source = self._path(path)
        if not source.is_file():
            raise BlobNotFound(path)
        with _os_errors("read", path):
            return source.read_bytes()

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def local_path(self, path: str) -> Path:
        """Where the blob lives on disk, so readers can open it without a copy."""
        return self._path(path)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if base.is_file():
            return [prefix]
        if not base.is_dir():
            return []
        with _os_errors("list", prefix):
            return sorted(
                p.relative_to(self.root).as_posix()
                for p in base.rglob("*")
                if p.is_file() and not p.name.startswith(".")
            )

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise StorageError("refusing to delete the whole store")
        names = self.list(prefix)
        base = self._path(prefix)
        with _os_errors("delete", prefix):
            if base.is_dir():
                shutil.rmtree(base)
            elif base.is_file():
                base.unlink()
        return len(names)

    def ping(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK):
            raise StorageError(f"storage folder {self.root} is not a writable folder")
