"""Deterministic synthetic e-commerce transactions with labelled fraud.

``generate_transactions`` is the single entry point: population -> legitimate
traffic -> fraud patterns -> drift -> one frame sorted by time. Each stage
draws from its own child of ``np.random.default_rng(seed)``, so the output
depends only on the config and a knob only perturbs the stage it belongs to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ml.datagen import catalog
from ml.datagen import fraud_patterns as fp
from ml.datagen.config import DriftConfig, GeneratorConfig, validate
from ml.datagen.entities import Population, build_population
from ml.datagen.rows import Rows
from ml.datagen.sampling import MS_PER_DAY, IntArray
from ml.datagen.traffic import legit_traffic

__all__ = ["COLUMNS", "DriftConfig", "GeneratorConfig", "generate_transactions"]

COLUMNS = (
    "transaction_id",
    "timestamp",
    "user_id",
    "merchant_id",
    "merchant_category",
    "amount",
    "currency",
    "device_type",
    "device_id",
    "location",
    "payment_method",
    "gender",
    "age_group",
    "is_fraud",
    "fraud_type",
)

_STAGES = 8  # number of independent random streams, one per stage


def generate_transactions(config: GeneratorConfig) -> pd.DataFrame:
    """Generate ``config.n_rows`` transactions, sorted by timestamp then id.

    The same config always returns an identical frame. Fraud row counts are
    exact: ``round(target_fraud_rate * n_rows)`` rows have ``is_fraud == 1``
    (fewer only when a tiny population cannot host a pattern).
    """
    start = validate(config)
    rngs = np.random.default_rng(config.seed).spawn(_STAGES)
    days, drift = config.days, config.drift
    horizon_ms = days * MS_PER_DAY

    population = build_population(rngs[0], config.n_users, config.n_merchants, days)
    budgets = fp.fraud_budgets(
        config.n_rows, config.target_fraud_rate, days, drift.new_fraud_pattern_day
    )
    legit = legit_traffic(
        rngs[1], population, config.n_rows - budgets.injected, start, days, drift
    )

    next_device = population.n_devices
    card = fp.card_testing(
        rngs[2], population, budgets.card_testing, horizon_ms, next_device
    )
    next_device += _episodes(card)
    takeover = fp.account_takeover(
        rngs[3], population, budgets.account_takeover, horizon_ms, next_device, legit
    )
    next_device += _episodes(takeover)

    compromised = fp.compromised_merchants(
        rngs[4], population, legit, budgets.compromised_merchant, days
    )
    # A shortfall of compromised-merchant rows is made up with outliers so the
    # overall fraud count stays exact.
    shortfall = budgets.compromised_merchant - len(compromised.rows)
    outliers = fp.high_amount_outliers(
        rngs[5], legit, budgets.high_amount_outlier + shortfall, compromised.rows
    )
    legit = _relabel(legit, compromised, fp.COMPROMISED_MERCHANT)
    legit = _relabel(legit, outliers, fp.HIGH_AMOUNT_OUTLIER)

    parts = [legit, card, takeover]
    if drift.new_fraud_pattern_day is not None:
        parts.append(
            fp.new_pattern(
                rngs[6],
                population,
                legit,
                budgets.new_pattern,
                drift.new_fraud_pattern_day,
                days,
            )
        )
    rows = Rows.concat(parts)
    rows = rows.take(np.argsort(rows.time_ms, kind="stable").astype(np.int64))
    device_numbers = rngs[7].permutation(next_device).astype(np.int64)
    return _to_frame(rows, population, start, drift, device_numbers)


def _episodes(rows: Rows) -> int:
    """Number of fraudster devices a block used (one per episode)."""
    return len(np.unique(rows.device))


def _relabel(rows: Rows, relabel: fp.Relabel, fraud_type: int) -> Rows:
    """Copy of ``rows`` with ``relabel.rows`` marked as fraud and rescaled."""
    amount = rows.amount_eur.copy()
    amount[relabel.rows] *= relabel.amount_factor
    labels = rows.fraud_type.copy()
    labels[relabel.rows] = fraud_type
    return Rows(
        user=rows.user,
        merchant=rows.merchant,
        time_ms=rows.time_ms,
        amount_eur=amount,
        device=rows.device,
        device_type=rows.device_type,
        country=rows.country,
        payment=rows.payment,
        fraud_type=labels,
    )


def _to_frame(
    rows: Rows,
    population: Population,
    start: date,
    drift: DriftConfig,
    device_numbers: IntArray,
) -> pd.DataFrame:
    """Attach string labels, currency and drifted amounts to sorted rows."""
    users, merchants = population.users, population.merchants
    n = len(rows)

    amount_eur = rows.amount_eur
    if drift.drift_start_day is not None and drift.amount_shift_factor != 1.0:
        shifted = rows.time_ms >= drift.drift_start_day * MS_PER_DAY
        amount_eur = np.where(
            shifted, amount_eur * drift.amount_shift_factor, amount_eur
        )
    currency = users.currency[rows.user]
    units = np.array([catalog.UNITS_PER_EUR[c] for c in catalog.CURRENCIES])
    amount = np.maximum(np.round(amount_eur * units[currency], 2), 0.01)

    start_s = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())
    epoch_ns = start_s * 1_000_000_000 + rows.time_ms * 1_000_000
    timestamp = pd.Series(epoch_ns.view("datetime64[ns]")).dt.tz_localize("UTC")

    user_ids = _ids("U", np.arange(users.n), 7)
    merchant_ids = _ids("M", np.arange(merchants.n), 6)
    device_ids = _ids("D", device_numbers, 9)
    columns: dict[str, pd.Series] = {
        "transaction_id": _series(_ids("T", np.arange(n), 12)),
        "timestamp": timestamp,
        "user_id": _take(user_ids, rows.user),
        "merchant_id": _take(merchant_ids, rows.merchant),
        "merchant_category": _take(
            catalog.CATEGORIES, merchants.category[rows.merchant]
        ),
        "amount": pd.Series(amount, dtype="float64"),
        "currency": _take(catalog.CURRENCIES, currency),
        "device_type": _take(catalog.DEVICE_TYPES, rows.device_type),
        "device_id": _take(device_ids, rows.device),
        "location": _take(catalog.COUNTRIES, rows.country),
        "payment_method": _take(catalog.PAYMENT_METHODS, rows.payment),
        "gender": _take(catalog.GENDERS, users.gender[rows.user]),
        "age_group": _take(catalog.AGE_GROUPS, users.age_group[rows.user]),
        "is_fraud": pd.Series((rows.fraud_type > 0).astype(np.int64)),
        "fraud_type": _take(catalog.FRAUD_TYPES, rows.fraud_type),
    }
    return pd.DataFrame(columns)


def _ids(prefix: str, numbers: IntArray, width: int) -> pa.Array:
    """Zero-padded ids such as ``U0000042`` (wider if the numbers need it)."""
    width = max(width, len(str(int(numbers.max(initial=0)))))
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _take(labels: Sequence[str] | pa.Array, codes: IntArray) -> pd.Series:
    """Label per code; pyarrow's take beats building a numpy string array."""
    table = labels if isinstance(labels, pa.Array) else pa.array(list(labels))
    return _series(table.take(pa.array(codes)))


def _series(values: pa.Array) -> pd.Series:
    """Arrow strings as a pandas ``str`` column."""
    return pd.Series(values.to_pandas(), dtype="str", copy=False)
