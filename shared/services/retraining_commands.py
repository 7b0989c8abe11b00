"""The retraining use cases' typed commands and answers: light to import (the HTTP app
builds them, and the Functions host indexes that app without pandas or SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

StrategyType = Literal["replace", "merge", "sliding_window"]
STRATEGIES: tuple[str, ...] = ("replace", "merge", "sliding_window")
STEPS: tuple[str, ...] = (
    "assemble",
    "features",
    "train",
    "evaluate",
    "gates",
    "promote",
)


@dataclass(frozen=True)
class SampleWeights:
    """Each source's share of the total training weight; the two sum to 1."""

    new: float
    historical: float


@dataclass(frozen=True)
class DataStrategy:
    """What the challenger trains on.

    replace: the new dataset (default: the latest version of the dataset the champion's
    features came from). merge: the new and the historical dataset, each row weighted
    so the sources get ``sample_weights`` of the total (default: every row 1).
    sliding_window: the most recent ``window`` (a duration such as "30d", "12h", "2w")
    of the new dataset, or of new and historical when one is given."""

    type: str
    new_dataset_id: str | None = None
    new_dataset_version: str | None = None  # default: the latest
    historical_dataset_id: str | None = None
    historical_dataset_version: str | None = None
    sample_weights: SampleWeights | None = None
    window: str | None = None


@dataclass(frozen=True)
class TriggerRetraining:
    model_id: str
    reason: str
    data_strategy: DataStrategy
    auto_promote: bool = False
    actor: str | None = None
    trigger: str = "api"  # or "alert"
    alert_id: str | None = None


@dataclass(frozen=True)
class PromoteChallenger:
    job_id: str
    reason: str
    actor: str | None = None


@dataclass(frozen=True)
class RetrainingQuery:
    page: int = 1
    page_size: int = 20
    status: str | None = None  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED


@dataclass(frozen=True)
class RetrainingAccepted:
    job_id: str
    status: str
    model_id: str
    estimated_time_seconds: float
