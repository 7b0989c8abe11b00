"""Test data for the feature tests (a helper module; it holds no tests).

Uses the project generator when it is importable and falls back to a small local
one. Timestamps are floored to the minute so equal timestamps (ties) occur, and
some optional values and labels are blanked to exercise missing-value handling.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _local_transactions(
    n_rows: int, n_users: int, n_merchants: int, days: int, seed: int
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    offsets = np.sort(rng.integers(0, days * 86_400_000, n_rows))
    users = rng.integers(0, n_users, n_rows)
    return pd.DataFrame(
        {
            "transaction_id": [f"T{i:09d}" for i in range(n_rows)],
            "timestamp": start + pd.to_timedelta(offsets, unit="ms"),
            "user_id": [f"U{u:05d}" for u in users],
            "merchant_id": [f"M{m:04d}" for m in rng.integers(0, n_merchants, n_rows)],
            "merchant_category": rng.choice(["food", "travel", "gift_cards"], n_rows),
            "amount": np.round(rng.lognormal(3.0, 1.0, n_rows), 2),
            "device_type": rng.choice(["mobile", "desktop"], n_rows),
            "device_id": [f"D{d:06d}" for d in users * 3 + rng.integers(0, 3, n_rows)],
            "location": rng.choice(
                ["FR", "DE", "ES", "US"], n_rows, p=[0.6, 0.2, 0.15, 0.05]
            ),
            "payment_method": rng.choice(["card", "paypal", "wallet"], n_rows),
            "is_fraud": (rng.random(n_rows) < 0.05).astype(np.int64),
        }
    )


def transactions(
    n_rows: int = 2_000,
    n_users: int = 200,
    n_merchants: int = 30,
    days: int = 60,
    seed: int = 7,
) -> pd.DataFrame:
    """Transactions sorted by time (stable), with ties, gaps and unlabelled rows."""
    try:
        from ml.datagen import GeneratorConfig, generate_transactions

        df = generate_transactions(
            GeneratorConfig(
                n_rows=n_rows,
                n_users=n_users,
                n_merchants=n_merchants,
                days=days,
                seed=seed,
                target_fraud_rate=0.05,
            )
        )
    except ImportError:
        df = _local_transactions(n_rows, n_users, n_merchants, days, seed)
    rng = np.random.default_rng(seed + 1)
    df = df.copy()
    df["timestamp"] = df["timestamp"].dt.floor("min")
    for column, share in (
        ("device_id", 0.05),
        ("merchant_id", 0.02),
        ("location", 0.03),
    ):
        df[column] = (
            df[column].astype("object").where(rng.random(len(df)) >= share, None)
        )
    label = df["is_fraud"].astype("float64")
    df["is_fraud"] = label.where(rng.random(len(df)) >= 0.1)
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)
