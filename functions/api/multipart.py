"""Stream a multipart/form-data upload to a temporary file, enforcing the size limit.

Starlette's form parser has no limit on file parts, so a 5 GB body would be spooled to
disk before anyone could say no. Here every chunk is counted as it arrives.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.multipart import FormParser, parse_options_header

from shared.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
    field_error,
)


@dataclass
class FormUpload:
    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0
    repeated: set[str] = field(default_factory=set)
    """Names of the fields (and of ``file``) sent more than once; the last one wins."""


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {limit // (1024 * 1024)} MiB "
        "(setting SH_MAX_UPLOAD_MB).",
        field_error("file", "too large"),
    )


def _unwritable(exc: OSError) -> ServiceUnavailable:
    return ServiceUnavailable(
        "The server could not write the upload to disk "
        f"({exc.strerror or type(exc).__name__}); nothing was stored. Try again later."
    )


async def read_form(request: Request, tmp_dir: Path, max_bytes: int) -> FormUpload:
    """Parse the request body into fields and one file written under ``tmp_dir``."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UnsupportedMediaType(
            "Send the dataset as multipart/form-data with a 'file' part "
            "(curl -F file=@data.csv -F name=...).",
            field_error("content-type", f"got {content_type or 'none'}"),
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise _too_large(max_bytes)

    form = FormUpload()
    out: Any = None

    def on_field(f: Any) -> None:
        if f.field_name:
            name = f.field_name.decode("utf-8", "replace")
            if name in form.fields:
                form.repeated.add(name)
            form.fields[name] = (f.value or b"").decode("utf-8", "replace")

    def on_file(f: Any) -> None:
        nonlocal out
        if f.field_name != b"file":
            return
        if out is not None:
            form.repeated.add("file")
            out.file_object.close()
        if f.in_memory:  # a large upload is on disk already (flushing it again warns)
            f.flush_to_disk()
        out = f

    mime, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ValidationFailed(
            "multipart/form-data without a boundary.",
            field_error("content-type", "no boundary"),
        )
    parser = FormParser(
        mime.decode(),
        on_field,
        on_file,
        boundary=boundary,
        config={
            "UPLOAD_DIR": str(tmp_dir),
            "UPLOAD_DELETE_TMP": False,
            "MAX_MEMORY_FILE_SIZE": 1024 * 1024,
        },
    )
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes + 64 * 1024:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except (PayloadTooLarge, UnsupportedMediaType):
        raise
    except OSError as exc:  # the spool's disk, not the request (parse errors are not)
        raise _unwritable(exc) from exc
    except Exception as exc:
        raise ValidationFailed(f"Malformed multipart body: {exc}") from None
    if out is not None:
        try:
            out.file_object.flush()
            name = out.actual_file_name
            path = Path(name.decode() if isinstance(name, bytes) else name)
            if not path.is_absolute():
                # small files stay in memory inside the parser; write them out
                fd, tmp = tempfile.mkstemp(dir=tmp_dir)
                with os.fdopen(fd, "wb") as fh:
                    out.file_object.seek(0)
                    fh.write(out.file_object.read())
                path = Path(tmp)
            out.file_object.close()
        except OSError as exc:
            raise _unwritable(exc) from exc
        form.file_path = path
        form.size = path.stat().st_size
        form.filename = out.file_name.decode() if out.file_name else None
        ctype = getattr(out, "content_type", None)
        form.content_type = ctype.decode() if isinstance(ctype, bytes) else ctype
        if form.size > max_bytes:
            raise _too_large(max_bytes)
    return form
