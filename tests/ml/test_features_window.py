"""A window's features computed with the history before it equal the whole table's
batch features on those rows; rows after the window change nothing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.datagen import GeneratorConfig, generate_transactions
from ml.features import FeatureConfig, FeatureInputError, compute_features
from ml.features.window import window_features


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return generate_transactions(
        GeneratorConfig(n_rows=4000, n_users=300, n_merchants=40, days=20, seed=11)
    )


def _ns(value: str) -> int:
    return int(pd.Timestamp(value, tz="UTC").value)


def test_window_equals_batch_rows(transactions: pd.DataFrame) -> None:
    config = FeatureConfig()
    full = compute_features(transactions, config)
    names = full.feature_names
    ts = pd.to_datetime(transactions["timestamp"], utc=True)
    start, end = ts.min() + pd.Timedelta(days=10), ts.min() + pd.Timedelta(days=15)
    window = window_features(transactions, config, names, start.value, end.value)
    inside = ((ts >= start) & (ts < end)).to_numpy()
    assert window.n == int(inside.sum()) > 0
    assert window.history_rows == int((ts < start).sum())
    expected = full.frame.loc[inside, names].to_numpy(dtype=np.float32)
    np.testing.assert_allclose(window.matrix, expected, rtol=1e-6, atol=1e-6)
    assert list(window.transaction_id) == list(full.frame["transaction_id"][inside])
    assert list(window.user_id) == list(transactions["user_id"][inside].astype(str))
    assert window.label is not None
    assert np.array_equal(window.label, transactions["is_fraud"][inside].to_numpy())


def test_open_window_and_model_order(transactions: pd.DataFrame) -> None:
    config = FeatureConfig()
    names = compute_features(transactions.head(50), config).feature_names[::-1][:5]
    window = window_features(transactions, config, names)
    assert window.n == len(transactions) and window.history_rows == 0
    assert window.matrix.shape == (len(transactions), 5)


def test_features_the_data_cannot_give(transactions: pd.DataFrame) -> None:
    with pytest.raises(FeatureInputError) as err:
        window_features(transactions, FeatureConfig(), ["no_such_feature"])
    assert "no_such_feature" in err.value.message
