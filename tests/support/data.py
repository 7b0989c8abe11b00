"""Small dataset files for API tests."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CSV = (
    b"transaction_id,user_id,amount,timestamp,device_type,is_fraud\n"
    b"T1,U1,10.50,2026-01-01T10:00:00Z,mobile,0\n"
    b"T2,U1,250.00,2026-01-01T11:30:00Z,desktop,1\n"
    b"T3,U2,3.99,2026-01-02T08:15:00Z,mobile,0\n"
)


def parquet_bytes(rows: int = 5) -> bytes:
    table = pa.table(
        {
            "transaction_id": [f"T{i}" for i in range(rows)],
            "amount": [float(i) + 0.5 for i in range(rows)],
            "is_fraud": [i % 2 for i in range(rows)],
        }
    )
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def upload(
    client: Any,
    name: str | None = "tx",
    content: bytes = CSV,
    filename: str = "tx.csv",
    content_type: str = "text/csv",
    description: str | None = None,
    url: str = "/api/v1/datasets",
) -> Any:
    data = {}
    if name is not None:
        data["name"] = name
    if description is not None:
        data["description"] = description
    return client.post(
        url, data=data, files={"file": (filename, content, content_type)}
    )
