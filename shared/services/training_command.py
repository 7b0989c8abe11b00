"""The typed command that starts a training job, and its answer: plain dataclasses the
route builds, light to import (no database or training libraries)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SplitRequest:
    """out_of_time (default): test on the last `test_fraction` of the time span; time:
    explicit windows; random: stratified (leaks for fraud data, says so). `gap`
    defaults to the feature set's label delay."""

    type: str | None = None
    train_start: str | None = None
    train_end: str | None = None
    test_start: str | None = None
    test_end: str | None = None
    gap: str | None = None
    test_fraction: float | None = None
    validation_fraction: float | None = None


@dataclass(frozen=True)
class StartTraining:
    name: str
    feature_set_id: str
    algorithm: str
    hyperparameters: dict[str, Any] | None = None  # None: the built-in search
    split: SplitRequest | None = None
    train_test_split: float | None = None  # a random split of this training fraction
    target_column: str = "is_fraud"
    cost_missed_fraud: float | None = None
    cost_false_alarm: float | None = None
    cost_ratio: float | None = None  # missed fraud / false alarm, kept for old clients
    search_seconds: float | None = None
    seed: int = 42
    # a protected attribute's column used as a model feature: refused unless allowed
    allow_protected_features: bool = False
    # {"method", "constraint", "attribute"}: a mitigated model trained beside the plain one
    fairness_mitigation: dict[str, str] | None = None
    # a carried column of the feature set holding each row's training weight
    sample_weight_column: str | None = None


@dataclass(frozen=True)
class TrainingAccepted:
    job_id: str
    status: str
    estimated_time_seconds: float
