"""The feature service's typed command and answer; light to import (the HTTP app builds
the command, and the Functions host indexes that app without SQLAlchemy or pandas)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ComputeCommand:
    """A feature computation asked for (POST /features/compute); checked against the
    dataset by ``FeatureService.request_compute``."""

    dataset_id: str
    dataset_version: str | None = None  # default: the latest
    feature_groups: tuple[str, ...] | None = None  # default: every group
    output_name: str | None = None  # default: features_<version>
    column_mapping: Mapping[str, str] = field(default_factory=dict)  # role: column
    config: Mapping[str, Any] = field(default_factory=dict)  # FeatureConfig's fields
    carry_columns: tuple[str, ...] | None = None  # default: DEFAULT_CARRIED_COLUMNS


@dataclass(frozen=True)
class JobAccepted:
    job_id: str
    status: str
    estimated_time_seconds: float
