"""Legitimate transactions drawn from the population.

Who buys is proportional to heavy-tailed user activity, where is proportional
to merchant popularity weighted by the buyer's age-group category taste, when
follows the daily/weekly rhythm, and how much follows the category's lognormal
scaled by the user's spending habit.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from ml.datagen import catalog
from ml.datagen.config import DriftConfig
from ml.datagen.entities import Population
from ml.datagen.rhythm import sample_times_ms
from ml.datagen.rows import Rows
from ml.datagen.sampling import (
    MS_PER_DAY,
    FloatArray,
    IntArray,
    sample_codes,
    sample_codes_by_group,
)

# Share of a traveller's transactions geolocated abroad during the trip.
ABROAD_SHARE_ON_TRIP = 0.85
# Smallest legitimate basket in EUR.
MIN_AMOUNT_EUR = 0.5


def category_amounts(rng: np.random.Generator, category: IntArray) -> FloatArray:
    """Lognormal amounts in EUR with category-specific median and spread."""
    mu = np.log(np.asarray(catalog.CATEGORY_MEDIAN_EUR))[category]
    sigma = np.asarray(catalog.CATEGORY_SIGMA)[category]
    amounts: FloatArray = np.exp(mu + sigma * rng.standard_normal(len(category)))
    return amounts


def legit_traffic(
    rng: np.random.Generator,
    population: Population,
    n: int,
    start: date,
    days: int,
    drift: DriftConfig,
) -> Rows:
    """Sample ``n`` legitimate rows.

    Every random array is drawn whatever the drift settings, so drift knobs
    change only what they target and not the rest of the data set.
    """
    users, merchants = population.users, population.merchants
    user = sample_codes(rng, users.activity, n)
    age = users.age_group[user]

    affinity = np.asarray(catalog.AGE_CATEGORY_AFFINITY, dtype=np.float64)
    merchant_weights = affinity[:, merchants.category] * merchants.popularity[None, :]
    merchant = sample_codes_by_group(rng, merchant_weights, age)

    time_ms = sample_times_ms(rng, start, days, n)
    day = time_ms // MS_PER_DAY

    device = users.first_device[user] + _device_slot(rng, users.device_count[user])
    moved = rng.random(n) < drift.device_mix_shift
    if drift.drift_start_day is not None:
        moved &= day >= drift.drift_start_day
        device = np.where(moved, users.drift_device[user], device)

    on_trip = (
        (day >= users.trip_start_day[user])
        & (day < users.trip_end_day[user])
        & (rng.random(n) < ABROAD_SHARE_ON_TRIP)
    )
    country = np.where(on_trip, users.trip_country[user], users.home_country[user])

    usual = rng.random(n) < catalog.PREFERRED_PAYMENT_SHARE
    other = sample_codes_by_group(
        rng, np.asarray(catalog.AGE_PAYMENT_MIX, dtype=np.float64), age
    )
    payment = np.where(usual, users.payment_pref[user], other)

    amount = category_amounts(rng, merchants.category[merchant])
    amount = np.maximum(amount * users.spend_factor[user], MIN_AMOUNT_EUR)

    return Rows(
        user=user,
        merchant=merchant,
        time_ms=time_ms,
        amount_eur=amount,
        device=device,
        device_type=population.device_type[device],
        country=country,
        payment=payment,
        fraud_type=np.zeros(n, dtype=np.int64),
    )


def _device_slot(rng: np.random.Generator, device_count: IntArray) -> IntArray:
    """Which of their devices each row's user picks (primary most often)."""
    k = len(catalog.DEVICE_SLOT_WEIGHTS)
    slot_w = np.asarray(catalog.DEVICE_SLOT_WEIGHTS, dtype=np.float64)
    table = np.where(np.arange(k)[None, :] <= np.arange(k)[:, None], slot_w, 0.0)
    return sample_codes_by_group(rng, table, device_count - 1)
