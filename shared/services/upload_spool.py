"""Where dataset uploads wait on disk: the multipart body's file while it arrives, the
Parquet conversion while it is written. Under the app's data dir, never the system temp
dir, and swept when the app starts, since a killed process (kill -9, OOM, power loss)
leaves its files behind whatever ``finally`` blocks it had.

Layout: ``{spool}/{pid}/{upload-…|ingest-…}/``. Each process works in the folder named
by its pid, so a sweep removes only the folders of processes that are gone: servers on
one data dir (``--workers N``) never sweep each other's uploads in flight. A folder
named by the sweeping process's own pid is a dead predecessor's (a reused pid): the
sweep runs before this process receives anything.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.config import Settings
from shared.errors import ServiceUnavailable


@dataclass(frozen=True)
class Upload:
    """A file already streamed to local disk by the entry point."""

    path: Path
    filename: str | None
    content_type: str | None
    size: int


log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


@contextmanager
def upload_workdir(settings: Settings, prefix: str) -> Iterator[Path]:
    """A fresh folder for one upload's files, removed when the block ends."""
    own = settings.resolved_upload_spool_dir / str(os.getpid())
    try:
        own.mkdir(parents=True, exist_ok=True)
        workdir = tempfile.TemporaryDirectory(prefix=prefix, dir=own)
    except OSError as exc:
        raise ServiceUnavailable(
            "The server cannot write uploads to disk right now "
            f"({exc.strerror or type(exc).__name__}); try again later."
        ) from exc
    with workdir as path:
        yield Path(path)


def sweep_upload_spool(settings: Settings) -> int:
    """Remove what dead processes left in the spool; returns how many folders went.
    Never raises: a start must not fail over leftovers."""
    root = settings.resolved_upload_spool_dir
    removed = 0
    try:
        entries = list(root.iterdir()) if root.is_dir() else []
    except OSError:
        log.warning("could not list the upload spool %s", root, exc_info=True)
        return 0
    for entry in entries:
        if entry.name.isdigit() and _alive(int(entry.name)):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
        except OSError:
            log.warning(
                "could not remove %s from the upload spool", entry, exc_info=True
            )
    if removed:
        log.info("swept %d interrupted upload folder(s) from %s", removed, root)
    return removed
