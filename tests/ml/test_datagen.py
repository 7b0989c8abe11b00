"""Behavioural tests of the synthetic transaction generator (ml.datagen)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from ml.datagen import (
    COLUMNS,
    FRAUD_TYPES,
    UNITS_PER_EUR,
    DriftConfig,
    GeneratorConfig,
    generate_transactions,
)

START = pd.Timestamp("2026-01-01", tz="UTC")
BASE = GeneratorConfig(
    n_rows=50_000,
    n_users=5_000,
    n_merchants=500,
    days=30,
    seed=7,
    target_fraud_rate=0.02,
)
DRIFT = DriftConfig(
    amount_shift_factor=1.5,
    new_fraud_pattern_day=20,
    device_mix_shift=0.5,
    drift_start_day=15,
)
STRING_COLUMNS = [
    "transaction_id",
    "user_id",
    "merchant_id",
    "merchant_category",
    "currency",
    "device_type",
    "device_id",
    "location",
    "payment_method",
    "gender",
    "age_group",
    "fraud_type",
]


@pytest.fixture(scope="module")
def base() -> pd.DataFrame:
    return generate_transactions(BASE)


@pytest.fixture(scope="module")
def drifted() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(**{**BASE.__dict__, "drift": DRIFT})  # same seed, drift on
    )


def _day(frame: pd.DataFrame) -> pd.Series:
    return (frame["timestamp"] - START).dt.days


def _amount_eur(frame: pd.DataFrame) -> pd.Series:
    return frame["amount"] / frame["currency"].map(UNITS_PER_EUR).astype("float64")


# --- determinism ----------------------------------------------------------


def test_same_config_gives_identical_frame() -> None:
    config = GeneratorConfig(n_rows=20_000, n_users=2_000, n_merchants=200, days=10)
    pd.testing.assert_frame_equal(
        generate_transactions(config), generate_transactions(config)
    )


def test_different_seed_gives_different_frame() -> None:
    config = GeneratorConfig(n_rows=20_000, n_users=2_000, n_merchants=200, days=10)
    other = GeneratorConfig(**{**config.__dict__, "seed": config.seed + 1})
    a, b = generate_transactions(config), generate_transactions(other)
    assert not a["amount"].equals(b["amount"])
    assert not a["user_id"].equals(b["user_id"])


# --- schema ---------------------------------------------------------------


def test_columns_and_dtypes(base: pd.DataFrame) -> None:
    assert list(base.columns) == list(COLUMNS)
    for column in STRING_COLUMNS:
        assert pd.api.types.is_string_dtype(base[column]), column
        assert base[column].notna().all(), column
    assert isinstance(base["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(base["timestamp"].dt.tz) == "UTC"
    assert base["amount"].dtype == np.float64
    assert pd.api.types.is_integer_dtype(base["is_fraud"])


def test_value_domains(base: pd.DataFrame) -> None:
    assert len(base) == BASE.n_rows
    assert (base["amount"] > 0).all()
    cents = base["amount"] * 100
    assert np.allclose(cents, cents.round(), atol=1e-6)
    assert set(base["is_fraud"].unique()) == {0, 1}
    assert set(base["fraud_type"]) <= set(FRAUD_TYPES)
    assert ((base["fraud_type"] != "none") == (base["is_fraud"] == 1)).all()
    assert set(base["age_group"]) == {"18-25", "26-45", "46+"}
    assert set(base["device_type"]) <= {"mobile", "desktop", "tablet"}
    assert set(base["payment_method"]) == {"card", "wallet", "bank_transfer", "bnpl"}
    assert base["location"].str.fullmatch(r"[A-Z]{2}").all()
    assert set(base["currency"]) <= set(UNITS_PER_EUR)
    assert re.fullmatch(r"T\d{12}", base["transaction_id"].iloc[0])


def test_transaction_ids_unique_and_rows_sorted(base: pd.DataFrame) -> None:
    assert base["transaction_id"].is_unique
    assert base["timestamp"].is_monotonic_increasing
    resorted = base.sort_values(["timestamp", "transaction_id"], kind="stable")
    assert (resorted.index == base.index).all()


def test_timestamps_within_horizon(base: pd.DataFrame) -> None:
    assert base["timestamp"].min() >= START
    assert base["timestamp"].max() < START + pd.Timedelta(days=BASE.days)


def test_user_attributes_are_stable_per_user(base: pd.DataFrame) -> None:
    per_user = base.groupby("user_id")[["gender", "age_group", "currency"]].nunique()
    assert (per_user == 1).all().all()


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="drift_start_day"):
        generate_transactions(
            GeneratorConfig(n_rows=100, drift=DriftConfig(amount_shift_factor=2.0))
        )
    with pytest.raises(ValueError, match="new_fraud_pattern_day"):
        generate_transactions(
            GeneratorConfig(
                n_rows=100, days=5, drift=DriftConfig(new_fraud_pattern_day=9)
            )
        )
    with pytest.raises(ValueError, match="ISO date"):
        generate_transactions(GeneratorConfig(n_rows=100, start="01/02/2026"))


# --- realism of legitimate traffic -----------------------------------------


def test_activity_is_skewed_across_users_and_merchants(base: pd.DataFrame) -> None:
    per_user = base["user_id"].value_counts()
    top_users = per_user.iloc[: len(per_user) // 100].sum() / len(base)
    assert top_users > 0.04  # top 1 % of users: > 4x their head-count share
    per_merchant = base["merchant_id"].value_counts()
    assert per_merchant.iloc[:5].sum() / len(base) > 0.15


def test_users_have_few_devices_and_a_home_country(base: pd.DataFrame) -> None:
    legit = base[base["is_fraud"] == 0]
    devices = legit.groupby("user_id")["device_id"].nunique()
    assert devices.max() <= 3
    assert (devices <= 2).mean() > 0.85
    per_country = legit.groupby(["user_id", "location"]).size()
    home_share = per_country.groupby("user_id").max() / legit.groupby("user_id").size()
    assert home_share.median() == 1.0
    assert base["location"].value_counts(normalize=True).iloc[:3].sum() > 0.4


def test_daily_and_weekly_rhythm(base: pd.DataFrame) -> None:
    legit = base[base["is_fraud"] == 0]
    hour = legit["timestamp"].dt.hour
    night = hour.between(2, 5).mean()
    evening = hour.between(18, 21).mean()
    assert evening > 8 * night
    weekend = legit["timestamp"].dt.day_of_week >= 5
    # Weekends start later: a smaller share of the day's traffic at 7-9h.
    early = hour.between(7, 9)
    assert early[~weekend].mean() > early[weekend].mean() + 0.02
    per_day = (
        legit.groupby(legit["timestamp"].dt.day_of_week).size()
        / legit["timestamp"]
        .dt.normalize()
        .groupby(legit["timestamp"].dt.day_of_week)
        .nunique()
    )
    assert per_day[5] > per_day[1]  # Saturdays busier than Tuesdays


def test_amounts_depend_on_category(base: pd.DataFrame) -> None:
    legit = base[base["is_fraud"] == 0]
    median = _amount_eur(legit).groupby(legit["merchant_category"]).median()
    assert median["groceries"] < median["fashion"] < median["electronics"]
    assert median["electronics"] < median["travel"]
    assert median["digital_goods"] < 20 < 150 < median["electronics"]


# --- fraud ------------------------------------------------------------------


def test_fraud_rate_follows_target(base: pd.DataFrame) -> None:
    assert base["is_fraud"].mean() == pytest.approx(0.02, abs=0.002)
    low = generate_transactions(
        GeneratorConfig(
            n_rows=20_000, n_users=2_000, n_merchants=200, target_fraud_rate=0.005
        )
    )
    assert low["is_fraud"].mean() == pytest.approx(0.005, abs=0.001)


def test_every_fraud_type_present(drifted: pd.DataFrame) -> None:
    assert set(drifted["fraud_type"]) == set(FRAUD_TYPES)


def test_card_testing_bursts_are_small_and_fast(base: pd.DataFrame) -> None:
    ct = base[base["fraud_type"] == "card_testing"].copy()
    ct["eur"] = _amount_eur(ct)
    bursts = ct.groupby("device_id")
    assert bursts.ngroups >= 5
    assert (bursts["user_id"].nunique() == 1).all()  # one card per burst
    assert (bursts.size() >= 3).all()
    assert ct["eur"].max() <= 5.0 + 0.01
    legit_median = _amount_eur(base[base["is_fraud"] == 0]).median()
    assert ct["eur"].median() < legit_median / 10
    gaps = bursts["timestamp"].diff().dropna().dt.total_seconds()
    assert gaps.median() < 120
    assert gaps.max() < 15 * 60
    assert (bursts["merchant_id"].nunique() >= 2).mean() > 0.4


def test_account_takeover_uses_new_device_and_country(base: pd.DataFrame) -> None:
    ato = base[base["fraud_type"] == "account_takeover"]
    legit = base[base["is_fraud"] == 0]
    assert ato["user_id"].nunique() >= 20
    for key in ("device_id", "location"):
        seen = ato.merge(legit, on=["user_id", key], suffixes=("", "_legit"))
        # No legitimate use of that device/country by that user beforehand.
        assert not (seen["timestamp_legit"] < seen["timestamp"]).any(), key
    spans = ato.groupby("device_id")["timestamp"].agg(lambda s: s.max() - s.min())
    assert spans.max() <= pd.Timedelta(hours=6)
    assert _amount_eur(ato).median() > 3 * _amount_eur(legit).median()


def test_compromised_merchants_have_a_fraud_window(base: pd.DataFrame) -> None:
    cm = base[base["fraud_type"] == "compromised_merchant"]
    merchants = cm["merchant_id"].unique()
    assert 1 <= len(merchants) <= 0.2 * base["merchant_id"].nunique()
    day = _day(base)
    for merchant in merchants:
        rows = base["merchant_id"] == merchant
        fraud_days = day[rows & (base["fraud_type"] == "compromised_merchant")]
        assert fraud_days.max() - fraud_days.min() < 10
        window = rows & day.between(fraud_days.min(), fraud_days.max())
        assert base.loc[window, "is_fraud"].mean() > 0.1  # vs ~2 % overall


def test_high_amount_outliers_are_lone_and_large(base: pd.DataFrame) -> None:
    out = base[base["fraud_type"] == "high_amount_outlier"]
    legit = base[base["is_fraud"] == 0]
    category_median = _amount_eur(legit).groupby(legit["merchant_category"]).median()
    ratio = _amount_eur(out) / out["merchant_category"].map(category_median)
    assert ratio.median() > 5
    assert out["user_id"].value_counts().median() == 1


# --- drift ----------------------------------------------------------------


def test_amount_shift_applies_from_start_day(
    base: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    def after_before_ratio(frame: pd.DataFrame) -> float:
        legit = frame[frame["is_fraud"] == 0]
        after = _day(legit) >= 15
        eur = _amount_eur(legit)
        return float(eur[after].median() / eur[~after].median())

    shift = after_before_ratio(drifted) / after_before_ratio(base)
    assert shift == pytest.approx(1.5, abs=0.1)


def test_new_pattern_appears_only_from_its_day(
    base: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    new = drifted[drifted["fraud_type"] == "new_pattern"]
    assert len(new) > 0
    assert _day(new).min() >= 20
    assert (new["timestamp"].dt.hour < 5).all()
    crypto = drifted[drifted["payment_method"] == "crypto"]
    assert _day(crypto).min() >= 20
    assert (crypto["fraud_type"] == "new_pattern").all()
    assert "new_pattern" not in set(base["fraud_type"])
    assert "crypto" not in set(base["payment_method"])


def test_device_mix_shifts_after_start_day(
    base: pd.DataFrame, drifted: pd.DataFrame
) -> None:
    new_types = drifted["device_type"].isin(["smart_tv", "wearable"])
    after = _day(drifted) >= 15
    assert not new_types[~after].any()
    assert new_types[after].mean() > 0.15
    mobile = drifted["device_type"] == "mobile"
    base_mobile = base["device_type"] == "mobile"
    assert mobile[after].mean() < base_mobile[_day(base) >= 15].mean() - 0.1


# --- protected attributes --------------------------------------------------


def test_gender_has_no_direct_effect_on_fraud() -> None:
    # Many victims per pattern (10 % fraud, 20k users) and a per-victim
    # comparison: fraud rows cluster in bursts, which makes row-level rates
    # noisy without saying anything about who gets targeted.
    frame = generate_transactions(
        GeneratorConfig(
            n_rows=50_000, n_users=20_000, n_merchants=500, target_fraud_rate=0.1
        )
    )
    users = frame.drop_duplicates("user_id")
    population_share = float((users["gender"] == "female").mean())
    for fraud_type in FRAUD_TYPES[1:5]:
        victims = frame[frame["fraud_type"] == fraud_type].drop_duplicates("user_id")
        n = len(victims)
        assert n >= 90, fraud_type
        share = float((victims["gender"] == "female").mean())
        tolerance = 3.5 * np.sqrt(population_share * (1 - population_share) / n)
        assert abs(share - population_share) < tolerance, fraud_type


def test_age_group_is_a_proxy_through_devices_and_payments(
    base: pd.DataFrame,
) -> None:
    legit = base[base["is_fraud"] == 0]
    mobile = pd.crosstab(legit["age_group"], legit["device_type"], normalize="index")
    assert mobile.loc["18-25", "mobile"] > mobile.loc["46+", "mobile"] + 0.25
    pay = pd.crosstab(legit["age_group"], legit["payment_method"], normalize="index")
    assert pay.loc["18-25", "bnpl"] > 2 * pay.loc["46+", "bnpl"]
    # Takeover targets wallet/mobile users, so it hits the young more often.
    users = base.drop_duplicates("user_id").set_index("user_id")["age_group"]
    ato_users = base.loc[base["fraud_type"] == "account_takeover", "user_id"].unique()
    victim_age = users[ato_users].value_counts(normalize=True)
    population_age = users.value_counts(normalize=True)
    assert victim_age["18-25"] > population_age["18-25"]
