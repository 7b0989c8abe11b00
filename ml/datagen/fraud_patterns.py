"""Fraud patterns: each one is a recognisable behaviour a model must learn.

* card testing: a burst of tiny charges on one card, seconds to minutes apart,
  from a fraudster's device, spread over a few low-friction merchants;
* account takeover: a victim's account suddenly used from a new device in a
  new country for a few high-value purchases within hours;
* compromised merchant: for a window of days a share of one merchant's
  ordinary-looking transactions is fraudulent;
* high-amount outlier: a lone, unusually large charge;
* new pattern (drift): from a configured day, night-time fraud through a
  payment method and countries never seen before.

Victims are chosen by payment method and device (which vary with age group),
never by gender or age directly. Episodes are sampled as whole arrays; the
row budget of every pattern is exact so the fraud rate is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.datagen import catalog
from ml.datagen.entities import Population
from ml.datagen.rows import Rows
from ml.datagen.sampling import (
    MS_PER_DAY,
    MS_PER_HOUR,
    MS_PER_SECOND,
    FloatArray,
    IntArray,
    choose_without_replacement,
    codes_of,
    cumsum_within,
    episode_index,
    normalised,
    sample_codes,
    sample_excluding,
    split_budget,
    weights_by_label,
)
from ml.datagen.traffic import category_amounts

CARD_TESTING = catalog.FRAUD_TYPES.index("card_testing")
ACCOUNT_TAKEOVER = catalog.FRAUD_TYPES.index("account_takeover")
COMPROMISED_MERCHANT = catalog.FRAUD_TYPES.index("compromised_merchant")
HIGH_AMOUNT_OUTLIER = catalog.FRAUD_TYPES.index("high_amount_outlier")
NEW_PATTERN = catalog.FRAUD_TYPES.index("new_pattern")

# Split of the fraud budget between the stationary patterns.
PATTERN_SHARES = {
    CARD_TESTING: 0.30,
    ACCOUNT_TAKEOVER: 0.25,
    COMPROMISED_MERCHANT: 0.25,
    HIGH_AMOUNT_OUTLIER: 0.20,
}
# Share of fraud the new pattern takes on the days it is active.
NEW_PATTERN_SHARE = 0.30

# Relative chance of being targeted, by the victim's payment method
# (PAYMENT_METHODS order: card, wallet, bank_transfer, bnpl, crypto).
TAKEOVER_PAYMENT_RISK = (1.0, 3.0, 0.5, 1.5, 0.0)
OUTLIER_PAYMENT_RISK = (1.0, 1.5, 0.3, 5.0, 0.0)
CARD_TESTING_NON_CARD_RISK = 0.4  # relative to users paying by card
TAKEOVER_MOBILE_RISK = 2.0  # primary device is a phone
NEW_PATTERN_WALLET_RISK = 2.0

CARD_TESTING_AMOUNTS = (0.5, 0.99, 1.0, 1.0, 2.0, 5.0)
CARD_TESTING_MAX_ROWS = 50
COMPROMISED_FRAUD_SHARE = 0.35  # elevated share of fraud in a window
OUTLIER_MULTIPLIER_MEDIAN = 12.0
OUTLIER_MAX_EUR = 20_000.0

_MOBILE = catalog.DEVICE_TYPES.index("mobile")
_DESKTOP = catalog.DEVICE_TYPES.index("desktop")
_TABLET = catalog.DEVICE_TYPES.index("tablet")
_CARD = catalog.PAYMENT_METHODS.index("card")
_WALLET = catalog.PAYMENT_METHODS.index("wallet")
_CRYPTO = catalog.PAYMENT_METHODS.index("crypto")


@dataclass(frozen=True)
class Budgets:
    """Fraud rows per pattern; they add up to round(rate * n_rows)."""

    card_testing: int
    account_takeover: int
    compromised_merchant: int
    high_amount_outlier: int
    new_pattern: int

    @property
    def injected(self) -> int:
        """Rows added on top of legitimate traffic (the rest relabel it)."""
        return self.card_testing + self.account_takeover + self.new_pattern


@dataclass(frozen=True)
class Relabel:
    """Legitimate rows turned fraudulent, with their amount multipliers."""

    rows: IntArray
    amount_factor: FloatArray


def fraud_budgets(
    n_rows: int, rate: float, days: int, new_pattern_day: int | None
) -> Budgets:
    """Exact fraud row counts per pattern for a target fraud rate."""
    total = round(rate * n_rows)
    new = 0
    if new_pattern_day is not None:
        new = round(total * NEW_PATTERN_SHARE * (days - new_pattern_day) / days)
    rest = total - new
    card = round(rest * PATTERN_SHARES[CARD_TESTING])
    takeover = round(rest * PATTERN_SHARES[ACCOUNT_TAKEOVER])
    compromised = round(rest * PATTERN_SHARES[COMPROMISED_MERCHANT])
    return Budgets(
        card_testing=card,
        account_takeover=takeover,
        compromised_merchant=compromised,
        high_amount_outlier=rest - card - takeover - compromised,
        new_pattern=new,
    )


def card_testing(
    rng: np.random.Generator,
    population: Population,
    budget: int,
    horizon_ms: int,
    first_device: int,
) -> Rows:
    """Bursts of tiny charges on one card from one fraudster device."""

    def draw_sizes(r: np.random.Generator, k: int) -> IntArray:
        return np.minimum(3 + r.geometric(1 / 12, k), CARD_TESTING_MAX_ROWS)

    sizes = split_budget(rng, budget, draw_sizes, min_size=3)
    n_ep, n = len(sizes), int(sizes.sum())
    ep = episode_index(sizes)
    users = population.users

    risk = np.where(users.payment_pref == _CARD, 1.0, CARD_TESTING_NON_CARD_RISK)
    victim = sample_codes(rng, risk, n_ep)

    mean_gap_s = rng.uniform(5.0, 90.0, n_ep)
    gaps = (rng.exponential(1.0, n) * mean_gap_s[ep] + 1.0) * MS_PER_SECOND
    gaps[np.cumsum(sizes) - sizes] = 0.0
    offsets = cumsum_within(gaps.astype(np.int64), sizes)
    duration = offsets[np.cumsum(sizes) - 1] if n else offsets
    start = (rng.random(n_ep) * np.maximum(horizon_ms - duration - 1, 0)).astype(
        np.int64
    )

    # A few candidate merchants per burst; each charge hits one of them.
    pool, pool_w = _merchant_pool(population, catalog.CARD_TESTING_CATEGORIES)
    candidates = pool[sample_codes(rng, pool_w, n_ep * 4)].reshape(n_ep, 4)
    n_merchants = sample_codes(rng, (0.25, 0.35, 0.25, 0.15), n_ep) + 1
    pick = (rng.random(n) * n_merchants[ep]).astype(np.int64)

    round_value = rng.random(n) < 0.4
    fixed = np.asarray(CARD_TESTING_AMOUNTS)[
        sample_codes(rng, np.ones(len(CARD_TESTING_AMOUNTS)), n)
    ]
    amount = np.where(round_value, fixed, np.round(rng.uniform(0.5, 4.99, n), 2))

    device_type = _episode_device_types(rng, n_ep, (0.25, 0.70, 0.05))
    abroad = rng.random(n_ep) < 0.5
    origin_w = weights_by_label(catalog.COUNTRIES, catalog.FRAUD_ORIGIN_WEIGHTS)
    foreign = sample_codes(rng, origin_w, n_ep)
    country = np.where(abroad, foreign, users.home_country[victim])

    return Rows(
        user=victim[ep],
        merchant=candidates[ep, pick],
        time_ms=np.minimum(start[ep] + offsets, horizon_ms - 1),
        amount_eur=amount,
        device=first_device + ep,
        device_type=device_type[ep],
        country=country[ep],
        payment=np.full(n, _CARD, dtype=np.int64),
        fraud_type=np.full(n, CARD_TESTING, dtype=np.int64),
    )


def account_takeover(
    rng: np.random.Generator,
    population: Population,
    budget: int,
    horizon_ms: int,
    first_device: int,
    legit: Rows,
) -> Rows:
    """A few high-value purchases within hours from a new device and country.

    The country is drawn among those the victim has never used legitimately,
    so "new country" holds for the whole data set, not just statistically.
    """

    def draw_sizes(r: np.random.Generator, k: int) -> IntArray:
        return r.integers(2, 7, k, dtype=np.int64)

    sizes = split_budget(rng, budget, draw_sizes, min_size=2)
    n_ep, n = len(sizes), int(sizes.sum())
    ep = episode_index(sizes)
    users = population.users

    active = np.bincount(legit.user, minlength=users.n) > 0
    primary_type = population.device_type[users.first_device]
    risk = (
        np.asarray(TAKEOVER_PAYMENT_RISK)[users.payment_pref]
        * np.where(primary_type == _MOBILE, TAKEOVER_MOBILE_RISK, 1.0)
        * active
    )
    victim = choose_without_replacement(rng, risk, n_ep)
    if len(victim) < n_ep:  # tiny populations: allow repeat victims
        extra = sample_codes(rng, risk if risk.sum() > 0 else np.ones(users.n), n_ep)
        victim = np.concatenate((victim, extra[len(victim) :]))
    victim = rng.permutation(victim)

    duration = rng.uniform(0.5, 6.0, n_ep) * MS_PER_HOUR
    offsets = rng.random(n) * duration[ep]
    offsets[np.cumsum(sizes) - sizes] = 0.0
    offsets = offsets[np.lexsort((offsets, ep))].astype(np.int64)
    start = (rng.random(n_ep) * np.maximum(horizon_ms - duration, 0)).astype(np.int64)

    pool, pool_w = _merchant_pool(population, catalog.TAKEOVER_CATEGORIES)
    merchant = pool[sample_codes(rng, pool_w, n)]
    amount = category_amounts(rng, population.merchants.category[merchant])
    amount *= users.spend_factor[victim[ep]] * rng.uniform(1.5, 4.0, n)

    device_type = _episode_device_types(rng, n_ep, (0.50, 0.45, 0.05))
    country = _unused_countries(rng, population, legit, victim)

    return Rows(
        user=victim[ep],
        merchant=merchant,
        time_ms=np.minimum(start[ep] + offsets, horizon_ms - 1),
        amount_eur=amount,
        device=first_device + ep,
        device_type=device_type[ep],
        country=country[ep],
        payment=users.payment_pref[victim[ep]],
        fraud_type=np.full(n, ACCOUNT_TAKEOVER, dtype=np.int64),
    )


def compromised_merchants(
    rng: np.random.Generator,
    population: Population,
    legit: Rows,
    budget: int,
    days: int,
) -> Relabel:
    """Relabel ``budget`` rows at a few merchants during their breach window.

    Merchants are taken in random order until their in-window traffic is
    large enough for fraud to make up about ``COMPROMISED_FRAUD_SHARE`` of it,
    skipping merchants so busy that the share would be diluted.
    """
    if budget <= 0:
        return Relabel(np.empty(0, dtype=np.int64), np.empty(0))
    n_merchants = population.merchants.n
    length = np.minimum(rng.integers(3, 11, n_merchants), days)
    first_day = (rng.random(n_merchants) * (days - length + 1)).astype(np.int64)
    order = rng.permutation(n_merchants)

    day = legit.time_ms // MS_PER_DAY
    m = legit.merchant
    in_window = (day >= first_day[m]) & (day < first_day[m] + length[m])
    counts = np.bincount(m[in_window], minlength=n_merchants)
    needed = budget / COMPROMISED_FRAUD_SHARE
    eligible = order[(counts[order] > 0) & (counts[order] <= needed)]
    if len(eligible) == 0:  # only very busy merchants: take the quietest
        eligible = order[np.argsort(counts[order], kind="stable")[:1]]
    reach = np.cumsum(counts[eligible])
    chosen = eligible[: int(np.searchsorted(reach, needed)) + 1]

    is_chosen = np.zeros(n_merchants, dtype=np.bool_)
    is_chosen[chosen] = True
    candidates = np.flatnonzero(in_window & is_chosen[m])
    # Exactly `budget` candidates (or all of them), uniformly at random.
    take = np.argsort(rng.random(len(candidates)), kind="stable")[:budget]
    rows = np.sort(candidates[take])
    return Relabel(rows=rows, amount_factor=rng.lognormal(0.3, 0.25, len(rows)))


def high_amount_outliers(
    rng: np.random.Generator, legit: Rows, budget: int, taken: IntArray
) -> Relabel:
    """Relabel lone rows as fraud and blow their amount up ~12x."""
    risk = np.asarray(OUTLIER_PAYMENT_RISK)[legit.payment]
    risk[taken] = 0.0
    rows = choose_without_replacement(rng, risk, budget)
    multiplier = rng.lognormal(np.log(OUTLIER_MULTIPLIER_MEDIAN), 0.35, len(rows))
    capped = np.minimum(legit.amount_eur[rows] * multiplier, OUTLIER_MAX_EUR)
    return Relabel(rows=rows, amount_factor=capped / legit.amount_eur[rows])


def new_pattern(
    rng: np.random.Generator,
    population: Population,
    legit: Rows,
    budget: int,
    first_day: int,
    days: int,
) -> Rows:
    """Night-time crypto payments from unusual countries on the victim's device.

    The victim's own device makes it invisible to device-based features, so a
    model trained before ``first_day`` is expected to miss it.
    """
    users = population.users
    active = np.bincount(legit.user, minlength=users.n) > 0
    risk = np.where(users.payment_pref == _WALLET, NEW_PATTERN_WALLET_RISK, 1.0)
    risk = risk * active if active.any() else risk
    victim = sample_codes(rng, risk, budget)

    day = rng.integers(first_day, days, budget, dtype=np.int64)
    night = (rng.random(budget) * 5 * MS_PER_HOUR).astype(np.int64)  # 00-05h
    pool, pool_w = _merchant_pool(population, catalog.NEW_PATTERN_CATEGORIES)
    merchant = pool[sample_codes(rng, pool_w, budget)]
    amount = category_amounts(rng, population.merchants.category[merchant])
    amount *= rng.uniform(1.5, 3.0, budget)
    countries = codes_of(catalog.COUNTRIES, catalog.NEW_PATTERN_COUNTRIES)
    country = countries[sample_codes(rng, np.ones(len(countries)), budget)]
    device = users.first_device[victim]

    return Rows(
        user=victim,
        merchant=merchant,
        time_ms=day * MS_PER_DAY + night,
        amount_eur=amount,
        device=device,
        device_type=population.device_type[device],
        country=country,
        payment=np.full(budget, _CRYPTO, dtype=np.int64),
        fraud_type=np.full(budget, NEW_PATTERN, dtype=np.int64),
    )


def _merchant_pool(
    population: Population, categories: tuple[str, ...]
) -> tuple[IntArray, FloatArray]:
    """Merchants in ``categories`` and their popularity as probabilities."""
    merchants = population.merchants
    wanted = codes_of(catalog.CATEGORIES, categories)
    pool = np.flatnonzero(np.isin(merchants.category, wanted)).astype(np.int64)
    if len(pool) == 0:  # fewer merchants than categories
        pool = np.arange(merchants.n, dtype=np.int64)
    return pool, normalised(merchants.popularity[pool])


def _episode_device_types(
    rng: np.random.Generator, n_episodes: int, mix: tuple[float, float, float]
) -> IntArray:
    """Device type of each fraudster device (mobile, desktop, tablet mix)."""
    types = np.array([_MOBILE, _DESKTOP, _TABLET], dtype=np.int64)
    return types[sample_codes(rng, mix, n_episodes)]


def _unused_countries(
    rng: np.random.Generator, population: Population, legit: Rows, victim: IntArray
) -> IntArray:
    """Per victim, a fraud-origin country absent from their legitimate rows."""
    n_countries = len(catalog.COUNTRIES)
    seen_keys = np.unique(legit.user * n_countries + legit.country)
    keys = victim[:, None] * n_countries + np.arange(n_countries)[None, :]
    seen = np.isin(keys, seen_keys)
    seen |= population.users.home_country[victim][:, None] == np.arange(n_countries)
    origin_w = weights_by_label(catalog.COUNTRIES, catalog.FRAUD_ORIGIN_WEIGHTS)
    # Countries outside the fraud-origin list are a last resort, never a pick.
    fallback_w = np.where(origin_w > 0, origin_w, 1e-9)
    return sample_excluding(rng, fallback_w, seen)
