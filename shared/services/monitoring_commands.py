"""The typed commands and queries of the monitoring and alert use cases: light to
import, so the HTTP app's routes build them without loading the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class AuditCommand:
    model_id: str
    window: str | None = None  # 1h, 24h, 7d, 30d (default 24h without window_start)
    window_start: datetime | None = None
    window_end: datetime | None = None


@dataclass(frozen=True)
class DriftQuery:
    model_id: str
    window: str = "24h"  # or "custom": the latest audit of explicit bounds
    feature: str | None = None


@dataclass(frozen=True)
class PerformanceQuery:
    model_id: str
    window: str = "30d"
    granularity: str = "day"  # hour or day
    window_end: datetime | None = None


@dataclass(frozen=True)
class AlertQuery:
    page: int = 1
    page_size: int = 20
    status: str | None = None  # ACTIVE, ACKNOWLEDGED, DISMISSED
    severity: str | None = None  # INFO, WARNING, CRITICAL
    alert_type: str | None = None  # DRIFT, BIAS, PERFORMANCE, LATENCY
    model_id: uuid.UUID | None = None
