"""Turn an uploaded CSV or Parquet file into validated Parquet, streamed in batches.

A 1 GB CSV never sits in memory: pyarrow reads it block by block and each block is
appended to a Parquet writer. Every way a file can be wrong ends in ValidationFailed
with a message that says what to fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shared.errors import UnsupportedMediaType, ValidationFailed, field_error

FileFormat = Literal["csv", "parquet"]
_PARQUET_MAGIC = b"PAR1"
_BLOCK = 16 * 1024 * 1024
_MAX_TYPE_RETRIES = 50


@dataclass(frozen=True)
class ConvertedTable:
    path: Path
    row_count: int
    schema: dict[str, Any]
    source_format: FileFormat


def detect_format(
    path: Path, filename: str | None, content_type: str | None
) -> FileFormat:
    """Trust the bytes first, then the file name: browsers send vague content types."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not head:
        raise ValidationFailed(
            "The uploaded file is empty.", field_error("file", "empty file")
        )
    if head == _PARQUET_MAGIC:
        return "parquet"
    name = (filename or "").lower()
    if name.endswith((".parquet", ".pq")):
        raise ValidationFailed(
            "The file is named .parquet but is not a Parquet file.",
            field_error("file", "not a Parquet file"),
        )
    if name.endswith((".csv", ".txt")) or (content_type or "").startswith(
        ("text/csv", "text/plain", "application/csv", "application/vnd.ms-excel")
    ):
        return "csv"
    if b"\x00" in head or name.endswith((".xlsx", ".xls", ".json", ".zip", ".gz")):
        raise UnsupportedMediaType(
            f"Unsupported file type {filename!r}: upload a CSV or a Parquet file.",
            field_error("file", "expected .csv or .parquet"),
        )
    return "csv"


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_dictionary(t)
    ):
        return "string"
    return str(t)


def schema_of(schema: pa.Schema) -> dict[str, Any]:
    """The spec's schema shape, plus the exact Arrow type for those who need it."""
    return {
        "columns": [
            {"name": f.name, "type": _type_name(f.type), "arrow_type": str(f.type)}
            for f in schema
        ]
    }


def _check_names(names: list[str]) -> None:
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise ValidationFailed(
            f"Duplicate column names: {', '.join(dupes)}. Rename them so each is unique.",
            [{"field": "file", "message": f"duplicate column {d!r}"} for d in dupes],
        )
    blanks = [i + 1 for i, n in enumerate(names) if not n.strip()]
    if blanks:
        raise ValidationFailed(
            f"Column(s) at position {blanks} have no name; every column needs a header.",
            field_error("file", "empty column name"),
        )


def _check_utf8(path: Path) -> None:
    """Fail with the offset of the first bad byte rather than a parser's riddle."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    line = 1
    with open(path, "rb") as fh:
        while chunk := fh.read(_BLOCK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                pos = offset + exc.start
                line += chunk[: exc.start].count(b"\n")
                raise ValidationFailed(
                    f"The file is not valid UTF-8: byte 0x{chunk[exc.start]:02x} at "
                    f"offset {pos} (line {line}). Save the CSV as UTF-8 and upload again.",
                    field_error("file", "not UTF-8"),
                ) from None
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ValidationFailed(
                "The file is not valid UTF-8: it ends in the middle of a character.",
                field_error("file", "not UTF-8"),
            ) from None


def _read_header(path: Path) -> list[str]:
    with open(path, "rb") as fh:
        head = fh.read(1024 * 1024).decode("utf-8-sig", errors="replace")
    if not head.strip():
        raise ValidationFailed(
            "The uploaded file is empty.", field_error("file", "empty file")
        )
    first = next(csv.reader(io.StringIO(head)), [])
    return [c.strip() for c in first]


def _promote(current: pa.DataType | None) -> pa.DataType:
    if current is not None and pa.types.is_integer(current):
        return pa.float64()
    return pa.string()


def _csv_to_parquet(path: Path, out: Path, names: list[str]) -> tuple[int, pa.Schema]:
    """Stream CSV → Parquet; when a later block disagrees with the inferred type of a
    column, widen that column (int → float → string) and start over."""
    column_types: dict[str, pa.DataType] = {}
    for _ in range(_MAX_TYPE_RETRIES):
        try:
            return _stream_csv(path, out, column_types)
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            bad = _column_from_error(msg, names)
            if bad is None:
                raise ValidationFailed(
                    _csv_message(msg), field_error("file", "bad CSV")
                ) from None
            column_types[bad] = _promote(column_types.get(bad) or _inferred_type(msg))
    raise ValidationFailed("Could not settle the column types of this CSV.")


def _inferred_type(msg: str) -> pa.DataType | None:
    return pa.int64() if "conversion error to int" in msg else None


def _column_from_error(msg: str, names: list[str]) -> str | None:
    # pyarrow: "In CSV column #3: Row #1234: CSV conversion error to int64: ..."
    if "CSV conversion error" not in msg or "column #" not in msg:
        return None
    try:
        index = int(msg.split("column #", 1)[1].split(":", 1)[0])
    except ValueError:
        return None
    return names[index] if 0 <= index < len(names) else None


def _csv_message(msg: str) -> str:
    text = msg.split("\n", 1)[0]
    if "Expected" in text and "columns, got" in text:
        return (
            f"Malformed CSV: {text}. Every row needs as many fields as the header; "
            "check for unquoted commas or truncated lines."
        )
    if "UTF8" in text or "UTF-8" in text:
        return "The file is not valid UTF-8. Save the CSV as UTF-8 and upload again."
    return f"Could not parse the CSV: {text}"


def _stream_csv(
    path: Path, out: Path, column_types: dict[str, pa.DataType]
) -> tuple[int, pa.Schema]:
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_BLOCK, use_threads=True),
        convert_options=pacsv.ConvertOptions(
            column_types=column_types,
            strings_can_be_null=True,
            timestamp_parsers=[pacsv.ISO8601],
        ),
    )
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in reader:
            if writer is None:
                writer = pq.ParquetWriter(out, reader.schema, compression="zstd")
            writer.write_batch(batch)
            rows += batch.num_rows
        if writer is None:
            writer = pq.ParquetWriter(out, reader.schema, compression="zstd")
    finally:
        if writer is not None:
            writer.close()
    return rows, reader.schema


def convert_upload(path: Path, out: Path, fmt: FileFormat) -> ConvertedTable:
    """Validate the upload at ``path`` and write it as Parquet to ``out``."""
    if fmt == "parquet":
        try:
            pf = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationFailed(
                f"Not a readable Parquet file: {exc}",
                field_error("file", "bad Parquet"),
            ) from None
        schema = pf.schema_arrow
        _check_names(schema.names)
        rows = pf.metadata.num_rows
        shutil.copyfile(path, out)
    else:
        _check_utf8(path)
        names = _read_header(path)
        _check_names(names)
        rows, schema = _csv_to_parquet(path, out, names)
    if rows == 0:
        raise ValidationFailed(
            "The file has a header but no data rows.", field_error("file", "no rows")
        )
    return ConvertedTable(out, rows, schema_of(schema), fmt)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def read_head(path: Path, rows: int) -> list[dict[str, Any]]:
    """The first ``rows`` rows as JSON-ready dicts, reading only the batches needed."""
    pf = pq.ParquetFile(path)
    out: list[dict[str, Any]] = []
    for batch in pf.iter_batches(batch_size=max(rows, 1)):
        for record in batch.to_pylist():
            out.append({k: _json_value(v) for k, v in record.items()})
            if len(out) >= rows:
                return out
    return out
