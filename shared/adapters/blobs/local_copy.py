"""Give readers a local file for a blob: the file itself on the local store, else a copy."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.ports import BlobStore


@contextmanager
def local_file(store: BlobStore, path: str) -> Iterator[Path]:
    direct = getattr(store, "local_path", None)
    if direct is not None:
        yield direct(path)
        return
    with tempfile.TemporaryDirectory(prefix="sh-blob-") as tmp:
        target = Path(tmp) / Path(path).name
        store.download_file(path, target)
        yield target
