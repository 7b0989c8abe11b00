"""The prediction log's spool: rows that could not reach the database, kept as JSONL
files until they can be replayed.

Each line is one ``predictions`` row (ids and datetimes as text). A file is written as
``*.jsonl.part``, fsynced, then renamed, so a replay never sees half a file; a ``.part``
left by a crash mid-write is picked up once it is older than a minute (its torn last
line, if any, is skipped). Rows the database refuses outright (a broken row, not an
outage) go to ``rejected-*.jsonl`` beside them: kept for a person to look at, never
replayed automatically.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPOOL_PREFIX = "predictions-"
REJECTED_PREFIX = "rejected-"
_SUFFIX = ".jsonl"
_PART = ".part"
STALE_PART_SECONDS = 60.0


_FLOAT = {float}
_STR = {str}


def clean_json(value: Any) -> Any:
    """A JSON-safe copy: NaN and ±inf become null (PostgreSQL's JSONB has no NaN),
    numpy scalars and arrays become Python values, anything else unknown its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, dict):
        values = value.values()
        if (  # the common case, a flat dict of finite floats, checked in C: a NaN or
            # an infinity makes the sum one (as can an overflow: the slow path then)
            set(map(type, values)) <= _FLOAT
            and math.isfinite(sum(values))
            and set(map(type, value)) <= _STR
        ):
            return dict(value)
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalar or array
    if callable(tolist):
        return clean_json(tolist())
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)  # uuid.UUID among others


def encode_row(row: dict[str, Any]) -> str:
    """One JSON line; never fails (ids and datetimes as text, NaN as null)."""
    return json.dumps(clean_json(row), separators=(",", ":"))


def decode_row(line: str) -> dict[str, Any]:
    data = json.loads(line)
    created_at = datetime.fromisoformat(data["created_at"])
    if created_at.tzinfo is None:
        raise ValueError("created_at without a time zone")
    return {
        "id": uuid.UUID(data["id"]),
        "created_at": created_at,
        "model_id": uuid.UUID(data["model_id"]) if data.get("model_id") else None,
        "transaction_id": data.get("transaction_id"),
        "input_features": data["input_features"],
        "fraud_score": float(data["fraud_score"]),
        "is_fraud": bool(data["is_fraud"]),
        "explanation": data.get("explanation"),
        "latency_ms": data.get("latency_ms"),
    }


def _new_name(prefix: str) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{prefix}{stamp}-{time.time_ns() % 10**9:09d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def write_rows(directory: Path, rows: Iterable[dict[str, Any]], prefix: str) -> Path:
    """Write ``rows`` durably to a new file in ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / (_new_name(prefix) + _SUFFIX)
    part = final.with_name(final.name + _PART)
    try:
        with open(part, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(encode_row(row))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return final


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # not supported everywhere (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def pending_files(directory: Path) -> list[Path]:
    """Spool files to replay, oldest first (names sort by creation time)."""
    if not directory.is_dir():
        return []
    now = time.time()
    found = []
    for path in directory.iterdir():
        name = path.name
        if not name.startswith(SPOOL_PREFIX):
            continue
        if name.endswith(_SUFFIX):
            found.append(path)
        elif name.endswith(_SUFFIX + _PART):
            try:
                if now - path.stat().st_mtime >= STALE_PART_SECONDS:
                    found.append(path)
            except FileNotFoundError:
                continue
    return sorted(found, key=lambda p: p.name)


def read_rows(path: Path) -> Iterator[dict[str, Any] | str]:
    """The rows of a spool file in order; a line that does not parse is yielded as its
    text, for the caller to set aside. Raises FileNotFoundError if the file is gone."""
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield decode_row(line)
            except (ValueError, KeyError, TypeError) as exc:
                log.error(
                    "prediction spool %s line %d unreadable: %s", path, number, exc
                )
                yield line.rstrip("\n")
