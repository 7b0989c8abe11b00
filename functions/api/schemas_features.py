"""Shapes of the features routes' ``data`` (spec section 2), as
``shared.services.features`` answers them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

Record = dict[str, Any]


class FeatureSpec(BaseModel):
    name: str
    dtype: str
    group: str = Field(description="transaction, behavioral, temporal or aggregation")
    description: str
    requires: list[str] = Field(description="The roles the feature is computed from")


class LabelSummary(BaseModel):
    positives: int
    negatives: int
    unlabelled: int


class StoredFeatureConfig(BaseModel):
    """The configuration the set was computed with, and what the data allowed."""

    groups: list[str] | None = None
    windows: list[str] | None = None
    label_delay: str | None = None
    fraud_rate_windows: list[str] | None = None
    user_fraud_rate_windows: list[str] | None = None
    amount_ratio_windows: list[str] | None = None
    distinct_windows: list[str] | None = None
    column_mapping: dict[str, str] | None = None
    available_roles: list[str] | None = None
    dropped: list[dict[str, str]] | None = Field(
        None, description="Features left out for lack of an input column, and why"
    )
    carried_columns: list[str] | None = None
    label_summary: LabelSummary | None = None
    label_column: str | None = None
    timestamp_column: str | None = None


class FeatureSetSummary(BaseModel):
    id: str
    name: str
    dataset_id: str | None
    dataset_version: str | None
    status: str = Field(description="READY once its data is stored")
    feature_count: int | None
    row_count: int | None
    storage_path: str | None
    job_id: str | None = Field(description="The job that computed it")
    created_at: str | None


class FeatureSet(FeatureSetSummary):
    feature_config: StoredFeatureConfig
    features: list[FeatureSpec] | None
    statistics: dict[str, Record] | None = Field(
        description="Per feature: numeric (histogram, quantiles, moments) or "
        "categorical (frequencies, proportions)"
    )


class FeaturePreview(BaseModel):
    feature_set_id: str
    columns: list[str]
    rows: list[dict[str, Any]]
    returned: int
    total_rows: int | None
