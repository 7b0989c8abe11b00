"""Daily and weekly rhythm of legitimate shopping.

Time-of-day and day-of-week features only carry signal if legitimate traffic
has a shape: quiet nights, a lunchtime bump, an evening peak, and weekends
that start later and spread more evenly.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from ml.datagen.sampling import MS_PER_HOUR, FloatArray, IntArray, sample_codes

# Relative traffic per hour of day (UTC), weekdays and weekends.
WEEKDAY_HOURLY = (
    0.9, 0.5, 0.3, 0.2, 0.2, 0.3, 0.7, 1.5, 2.6, 3.2, 3.6, 4.0,
    4.6, 4.4, 4.1, 4.0, 4.2, 4.7, 5.4, 6.3, 6.9, 6.4, 4.6, 2.4,
)  # fmt: skip
WEEKEND_HOURLY = (
    1.3, 0.8, 0.5, 0.3, 0.2, 0.2, 0.3, 0.7, 1.4, 2.6, 3.8, 4.6,
    5.0, 5.0, 4.8, 4.7, 4.8, 5.0, 5.3, 5.9, 6.3, 5.9, 4.5, 2.6,
)  # fmt: skip
# Relative volume Monday..Sunday.
DAY_OF_WEEK_FACTOR = (0.95, 0.93, 0.95, 0.98, 1.05, 1.12, 1.08)


def hourly_weights(start: date, days: int) -> FloatArray:
    """Relative traffic for every hour of the horizon (length ``days * 24``)."""
    weekday = np.asarray(WEEKDAY_HOURLY, dtype=np.float64)
    weekend = np.asarray(WEEKEND_HOURLY, dtype=np.float64)
    weekday /= weekday.sum()
    weekend /= weekend.sum()
    dow = (start.weekday() + np.arange(days)) % 7
    profiles = np.where((dow >= 5)[:, None], weekend[None, :], weekday[None, :])
    factors = np.asarray(DAY_OF_WEEK_FACTOR, dtype=np.float64)[dow]
    return (profiles * factors[:, None]).ravel()


def sample_times_ms(
    rng: np.random.Generator, start: date, days: int, size: int
) -> IntArray:
    """Millisecond offsets from ``start`` following the daily/weekly rhythm."""
    hours = sample_codes(rng, hourly_weights(start, days), size)
    within = rng.integers(0, MS_PER_HOUR, size, dtype=np.int64)
    return hours * MS_PER_HOUR + within
