"""Static reference tables behind the synthetic transaction generator.

Kept apart from the sampling code so the "world" (countries, categories, device
and payment mixes) can be read and tuned in one place. Every table is an
ordered tuple: the position of a label is the integer code the generator uses
internally, and only the final frame carries the string labels.
"""

from __future__ import annotations

from typing import Final

# --- countries ------------------------------------------------------------
# An EU-centred marketplace: local time is close to UTC for most traffic, so
# the daily rhythm is applied in UTC without a per-country time-zone model.
COUNTRIES: Final = (
    # home countries of users (also travel destinations)
    "DE", "GB", "FR", "ES", "IT", "NL", "PL", "SE", "BE", "AT", "IE", "PT",
    "DK", "FI", "CH", "CZ", "RO", "GR", "HU", "NO", "US",
    # travel-only destinations
    "TR", "TH", "AE",
    # typical origins of fraudulent sessions (never a user's home)
    "NG", "RU", "BR", "VN", "ID", "IN", "UA", "PH", "CN",
    # only used by the drift "new pattern" fraud
    "PA", "KY",
)  # fmt: skip
COUNTRY_INDEX: Final = {c: i for i, c in enumerate(COUNTRIES)}

# A few countries dominate the user base (power-law-ish shares).
HOME_COUNTRY_WEIGHTS: Final = {
    "DE": 0.20, "GB": 0.15, "FR": 0.13, "ES": 0.08, "IT": 0.08, "NL": 0.07,
    "PL": 0.06, "SE": 0.035, "BE": 0.03, "AT": 0.025, "IE": 0.02, "PT": 0.02,
    "DK": 0.015, "FI": 0.01, "CH": 0.015, "CZ": 0.01, "RO": 0.01, "GR": 0.01,
    "HU": 0.008, "NO": 0.008, "US": 0.02,
}  # fmt: skip
TRAVEL_COUNTRY_WEIGHTS: Final = {
    "ES": 0.20, "IT": 0.15, "FR": 0.12, "GR": 0.08, "PT": 0.06, "GB": 0.06,
    "DE": 0.05, "US": 0.07, "TR": 0.06, "TH": 0.04, "AE": 0.04, "NL": 0.04,
    "AT": 0.03, "CH": 0.03,
}  # fmt: skip
FRAUD_ORIGIN_WEIGHTS: Final = {
    "NG": 0.15, "RU": 0.12, "BR": 0.10, "VN": 0.10, "ID": 0.08, "IN": 0.08,
    "UA": 0.07, "PH": 0.07, "CN": 0.08, "RO": 0.05, "US": 0.05, "TR": 0.05,
}  # fmt: skip
NEW_PATTERN_COUNTRIES: Final = ("PA", "KY")

# Amounts are charged in the account's home currency.
HOME_CURRENCY: Final = {
    "DE": "EUR", "GB": "GBP", "FR": "EUR", "ES": "EUR", "IT": "EUR",
    "NL": "EUR", "PL": "PLN", "SE": "SEK", "BE": "EUR", "AT": "EUR",
    "IE": "EUR", "PT": "EUR", "DK": "DKK", "FI": "EUR", "CH": "CHF",
    "CZ": "CZK", "RO": "RON", "GR": "EUR", "HU": "HUF", "NO": "NOK",
    "US": "USD",
}  # fmt: skip
CURRENCIES: Final = (
    "EUR", "GBP", "PLN", "SEK", "DKK", "CHF", "CZK", "RON", "HUF", "NOK", "USD",
)  # fmt: skip
# Units of currency per 1 EUR (fixed rates): divide `amount` by this to compare
# amounts across currencies.
UNITS_PER_EUR: Final = {
    "EUR": 1.0, "GBP": 0.85, "PLN": 4.3, "SEK": 11.3, "DKK": 7.46, "CHF": 0.94,
    "CZK": 25.0, "RON": 5.0, "HUF": 395.0, "NOK": 11.6, "USD": 1.08,
}  # fmt: skip

# --- merchants ------------------------------------------------------------
# name, share of merchants, median amount in EUR, lognormal sigma
_CATEGORY_TABLE: Final = (
    ("groceries", 0.12, 38.0, 0.55),
    ("food_delivery", 0.10, 27.0, 0.45),
    ("fashion", 0.16, 62.0, 0.70),
    ("electronics", 0.10, 240.0, 0.95),
    ("travel", 0.06, 410.0, 0.80),
    ("digital_goods", 0.10, 11.0, 0.85),
    ("home_garden", 0.10, 75.0, 0.85),
    ("health_beauty", 0.10, 29.0, 0.60),
    ("entertainment", 0.08, 24.0, 0.70),
    ("gift_cards", 0.04, 45.0, 0.55),
    ("jewelry", 0.04, 260.0, 1.00),
)
CATEGORIES: Final = tuple(row[0] for row in _CATEGORY_TABLE)
CATEGORY_SHARE: Final = tuple(row[1] for row in _CATEGORY_TABLE)
CATEGORY_MEDIAN_EUR: Final = tuple(row[2] for row in _CATEGORY_TABLE)
CATEGORY_SIGMA: Final = tuple(row[3] for row in _CATEGORY_TABLE)

# Categories each fraud pattern shops in (low-friction or resellable goods).
CARD_TESTING_CATEGORIES: Final = ("digital_goods", "gift_cards", "entertainment")
TAKEOVER_CATEGORIES: Final = ("electronics", "jewelry", "gift_cards", "travel")
NEW_PATTERN_CATEGORIES: Final = ("digital_goods", "gift_cards", "electronics")

# --- users ----------------------------------------------------------------
# Protected attributes: sampled independently of everything else, except that
# age_group shapes device, payment and category mixes (a realistic proxy).
GENDERS: Final = ("female", "male", "unspecified")
GENDER_WEIGHTS: Final = (0.49, 0.49, 0.02)
AGE_GROUPS: Final = ("18-25", "26-45", "46+")
AGE_WEIGHTS: Final = (0.22, 0.45, 0.33)
# Typical basket size relative to the category median, per age group.
AGE_SPEND_FACTOR: Final = (0.8, 1.0, 1.15)
# Category affinity per age group, in CATEGORIES order.
AGE_CATEGORY_AFFINITY: Final = (
    (0.8, 1.5, 1.4, 1.1, 0.7, 1.8, 0.4, 1.0, 1.5, 1.0, 0.6),
    (1.1, 1.1, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    (1.1, 0.6, 0.8, 0.9, 1.3, 0.5, 1.4, 1.1, 0.7, 1.0, 1.2),
)

DEVICE_TYPES: Final = ("mobile", "desktop", "tablet", "smart_tv", "wearable")
# Device-type mix of a user's own devices per age group (DEVICE_TYPES order).
AGE_DEVICE_MIX: Final = (
    (0.78, 0.12, 0.10, 0.0, 0.0),
    (0.60, 0.30, 0.10, 0.0, 0.0),
    (0.35, 0.45, 0.20, 0.0, 0.0),
)
# Where the drift knob `device_mix_shift` moves traffic to.
DRIFTED_DEVICE_MIX: Final = (0.20, 0.05, 0.30, 0.20, 0.25)
# Most users own one or two devices.
DEVICES_PER_USER_WEIGHTS: Final = (0.62, 0.30, 0.08)
# How often a user picks their 1st, 2nd, 3rd device.
DEVICE_SLOT_WEIGHTS: Final = (0.75, 0.20, 0.05)

PAYMENT_METHODS: Final = ("card", "wallet", "bank_transfer", "bnpl", "crypto")
# Preferred payment method mix per age group; "crypto" only appears via drift.
AGE_PAYMENT_MIX: Final = (
    (0.35, 0.35, 0.05, 0.25, 0.0),
    (0.50, 0.30, 0.10, 0.10, 0.0),
    (0.60, 0.10, 0.25, 0.05, 0.0),
)
PREFERRED_PAYMENT_SHARE: Final = 0.75

FRAUD_TYPES: Final = (
    "none",
    "card_testing",
    "account_takeover",
    "compromised_merchant",
    "high_amount_outlier",
    "new_pattern",
)
