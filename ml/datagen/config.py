"""Configuration of the synthetic transaction generator.

Frozen dataclasses so a config can be hashed, logged and reused as the exact
recipe of a data set: the same config always yields the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class DriftConfig:
    """Knobs that make the data non-stationary, for drift-monitoring tests.

    ``amount_shift_factor`` and ``device_mix_shift`` act from
    ``drift_start_day`` on and therefore need it set; ``new_fraud_pattern_day``
    is independent of it.
    """

    amount_shift_factor: float = 1.0
    new_fraud_pattern_day: int | None = None
    device_mix_shift: float = 0.0
    drift_start_day: int | None = None


@dataclass(frozen=True)
class GeneratorConfig:
    """Size, time span, seed and fraud level of a generated data set."""

    n_rows: int = 100_000
    n_users: int = 5_000
    n_merchants: int = 500
    days: int = 30
    start: str = "2026-01-01"
    seed: int = 42
    target_fraud_rate: float = 0.01
    drift: DriftConfig = DriftConfig()  # immutable, so sharing the default is safe


def validate(config: GeneratorConfig) -> date:
    """Reject inconsistent configs early and return the parsed start date.

    Failing loudly beats silently ignoring a knob (e.g. an amount shift without
    a start day would otherwise do nothing).
    """
    if config.n_rows < 1 or config.n_users < 1 or config.n_merchants < 1:
        raise ValueError("n_rows, n_users and n_merchants must be >= 1")
    if config.days < 1:
        raise ValueError("days must be >= 1")
    if not 0.0 <= config.target_fraud_rate <= 0.5:
        raise ValueError("target_fraud_rate must be within [0, 0.5]")
    try:
        start = date.fromisoformat(config.start)
    except ValueError as exc:
        raise ValueError(f"start must be an ISO date, got {config.start!r}") from exc
    drift = config.drift
    if drift.amount_shift_factor <= 0.0:
        raise ValueError("drift.amount_shift_factor must be > 0")
    if not 0.0 <= drift.device_mix_shift <= 1.0:
        raise ValueError("drift.device_mix_shift must be within [0, 1]")
    needs_start = drift.amount_shift_factor != 1.0 or drift.device_mix_shift > 0.0
    if drift.drift_start_day is None:
        if needs_start:
            raise ValueError(
                "drift.amount_shift_factor/device_mix_shift need drift.drift_start_day"
            )
    elif not 0 <= drift.drift_start_day < config.days:
        raise ValueError("drift.drift_start_day must be within [0, days)")
    day = drift.new_fraud_pattern_day
    if day is not None and not 0 <= day < config.days:
        raise ValueError("drift.new_fraud_pattern_day must be within [0, days)")
    return start
