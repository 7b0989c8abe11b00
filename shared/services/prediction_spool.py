"""Reading the prediction spool that earlier versions wrote (they logged behind their
answers and spilled rows the database had not taken to JSONL files), and the JSON
cleaning the log applies to its rows.

Each line is one ``predictions`` row (ids and datetimes as text). A ``.part`` file left
by a crash mid-write is picked up once it is older than a minute (its torn last line,
if any, is skipped).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SPOOL_PREFIX = "predictions-"
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
