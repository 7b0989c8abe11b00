"""Shapes of the datasets routes' ``data`` (spec section 1), as
``shared.services.datasets`` answers them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Column(BaseModel):
    name: str
    type: str = Field(description="integer, float, string, boolean, timestamp, ...")
    arrow_type: str = Field(description="The exact Arrow type of the Parquet copy")


class ColumnList(BaseModel):
    columns: list[Column]


class DatasetVersion(BaseModel):
    version: str = Field(description='"1.0", "2.0", ...')
    description: str | None
    storage_path: str
    row_count: int
    size_bytes: int = Field(description="Size of the uploaded file")
    source_format: str = Field(description="csv or parquet")
    source_filename: str | None
    created_at: str | None


class Dataset(BaseModel):
    # ``schema`` is a field name of the answer and a method of BaseModel
    model_config = ConfigDict(populate_by_name=True)

    id: str
    name: str
    description: str | None
    version: str = Field(description="The latest version")
    storage_path: str
    row_count: int | None
    schema_: ColumnList | None = Field(alias="schema")
    status: str
    created_at: str | None
    updated_at: str | None


class DatasetDetail(Dataset):
    versions: list[DatasetVersion] = Field(description="Oldest first")


class DatasetSchema(ColumnList):
    dataset_id: str
    version: str
    row_count: int


class DatasetPreview(BaseModel):
    dataset_id: str
    version: str
    columns: list[str]
    rows: list[dict[str, Any]]
    returned: int
    total_rows: int
