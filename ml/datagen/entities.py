"""Users, their devices and merchants: the population transactions come from.

Activity is heavy-tailed (a few users and merchants produce a large share of
traffic), most users own one or two devices and live in one of a few dominant
countries. Age group shapes device, payment and category preferences, which
is the only path by which a protected attribute relates to fraud.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.datagen import catalog
from ml.datagen.sampling import (
    FloatArray,
    IntArray,
    normalised,
    sample_codes,
    sample_codes_by_group,
    sample_excluding,
    weights_by_label,
)

# Pareto tail index of per-user activity: a long tail of heavy buyers, capped
# so that no single user dominates a data set.
USER_ACTIVITY_ALPHA = 2.0
USER_ACTIVITY_CAP = 40.0  # x the minimum activity
# Zipf exponent of merchant popularity (marketplace-like concentration).
MERCHANT_ZIPF_EXPONENT = 0.9
# Share of users taking one trip abroad per 30 days.
TRIP_RATE_PER_30_DAYS = 0.3


@dataclass(frozen=True)
class Users:
    """Per-user attributes, indexed by user number."""

    age_group: IntArray
    gender: IntArray
    home_country: IntArray
    currency: IntArray
    payment_pref: IntArray
    activity: FloatArray
    spend_factor: FloatArray
    first_device: IntArray
    device_count: IntArray
    drift_device: IntArray
    trip_start_day: IntArray
    trip_end_day: IntArray
    trip_country: IntArray

    @property
    def n(self) -> int:
        return len(self.age_group)


@dataclass(frozen=True)
class Merchants:
    """Per-merchant category and popularity weight."""

    category: IntArray
    popularity: FloatArray

    @property
    def n(self) -> int:
        return len(self.category)


@dataclass(frozen=True)
class Population:
    """Everything sampled once before any transaction is drawn.

    ``device_type`` covers the users' own devices plus one "drift" device per
    user (used only when the device mix drifts); fraudster devices get ids from
    ``n_devices`` upwards.
    """

    users: Users
    merchants: Merchants
    device_type: IntArray

    @property
    def n_devices(self) -> int:
        return len(self.device_type)


def build_population(
    rng: np.random.Generator, n_users: int, n_merchants: int, days: int
) -> Population:
    """Sample users, devices and merchants."""
    users, device_type = _build_users(rng, n_users, days)
    merchants = _build_merchants(rng, n_merchants)
    return Population(users=users, merchants=merchants, device_type=device_type)


def _build_users(rng: np.random.Generator, n: int, days: int) -> tuple[Users, IntArray]:
    age = sample_codes(rng, catalog.AGE_WEIGHTS, n)
    gender = sample_codes(rng, catalog.GENDER_WEIGHTS, n)
    home_w = weights_by_label(catalog.COUNTRIES, catalog.HOME_COUNTRY_WEIGHTS)
    home = sample_codes(rng, home_w, n)
    currency_of_country = np.array(
        [
            catalog.CURRENCIES.index(catalog.HOME_CURRENCY.get(c, "EUR"))
            for c in catalog.COUNTRIES
        ],
        dtype=np.int64,
    )
    pay_pref = sample_codes_by_group(
        rng, np.array(catalog.AGE_PAYMENT_MIX, dtype=np.float64), age
    )
    activity = np.minimum(rng.pareto(USER_ACTIVITY_ALPHA, n) + 1.0, USER_ACTIVITY_CAP)
    spend = np.asarray(catalog.AGE_SPEND_FACTOR)[age] * rng.lognormal(0.0, 0.3, n)

    device_count = sample_codes(rng, catalog.DEVICES_PER_USER_WEIGHTS, n) + 1
    first_device = np.concatenate(([0], np.cumsum(device_count)[:-1])).astype(np.int64)
    n_own = int(device_count.sum())
    owner_age = np.repeat(age, device_count)
    own_type = sample_codes_by_group(
        rng, np.array(catalog.AGE_DEVICE_MIX, dtype=np.float64), owner_age
    )
    drift_type = sample_codes(rng, catalog.DRIFTED_DEVICE_MIX, n)
    drift_device = n_own + np.arange(n, dtype=np.int64)

    trip_p = min(0.9, TRIP_RATE_PER_30_DAYS * days / 30.0)
    has_trip = rng.random(n) < trip_p
    trip_len = np.minimum(rng.integers(2, 15, n), days)
    trip_start = (rng.random(n) * (days - trip_len + 1)).astype(np.int64)
    trip_end = np.where(has_trip, trip_start + trip_len, trip_start)
    travel_w = weights_by_label(catalog.COUNTRIES, catalog.TRAVEL_COUNTRY_WEIGHTS)
    at_home = home[:, None] == np.arange(len(catalog.COUNTRIES))[None, :]
    trip_country = sample_excluding(rng, travel_w, at_home)

    users = Users(
        age_group=age,
        gender=gender,
        home_country=home,
        currency=currency_of_country[home],
        payment_pref=pay_pref,
        activity=activity,
        spend_factor=spend,
        first_device=first_device,
        device_count=device_count,
        drift_device=drift_device,
        trip_start_day=trip_start,
        trip_end_day=trip_end,
        trip_country=trip_country,
    )
    return users, np.concatenate((own_type, drift_type))


def _build_merchants(rng: np.random.Generator, n: int) -> Merchants:
    n_cat = len(catalog.CATEGORIES)
    # Every category gets at least one merchant so each fraud pattern always
    # finds the categories it shops in.
    guaranteed = np.arange(min(n, n_cat), dtype=np.int64)
    rest = sample_codes(rng, catalog.CATEGORY_SHARE, max(n - n_cat, 0))
    category = rng.permutation(np.concatenate((guaranteed, rest)))
    rank = rng.permutation(n).astype(np.float64) + 1.0
    popularity = normalised(rank**-MERCHANT_ZIPF_EXPONENT)
    return Merchants(category=category.astype(np.int64), popularity=popularity)
