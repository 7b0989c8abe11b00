"""The bias audit use cases' typed commands and queries; light to import (the HTTP app
builds them without loading numpy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Source = Literal["test_set", "predictions"]
TEST_SET: Source = "test_set"
PREDICTIONS: Source = "predictions"


@dataclass(frozen=True)
class BiasAuditCommand:
    model_id: str
    source: Source = TEST_SET
    # predictions only: 1h, 24h, 7d, 30d (default 24h), or explicit bounds
    window: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class BiasMetricsQuery:
    model_id: str
    source: Source | None = None  # None: the latest audit of either source
