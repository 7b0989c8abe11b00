"""Feature input at its edges: batches whose items all lack an optional entity, the
largest amounts a float holds, and times outside the range the features represent.
Every feature stays finite in the model's float32 input, and a batch still scores as
one by one."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    EntityKey,
    FeatureConfig,
    FeatureInputError,
    OnlineFeatureEngine,
    State,
    compute_features,
)
from ml.features.config import MAX_AMOUNT, MAX_TIMESTAMP, MIN_TIMESTAMP
from ml.features.online import Txn
from ml.features.online_batch import batch_features
from ml.features.transaction_features import amount_features, amount_features_one
from tests.ml.test_features_online_batch import _one_by_one

CONFIG = FeatureConfig()
T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def _txn(i: int, amount: float = 10.0, **ids: str) -> dict[str, Any]:
    return {
        "transaction_id": f"t{i}",
        "user_id": ids.pop("user_id", f"u{i % 3}"),
        "amount": amount,
        "timestamp": T0 + pd.Timedelta(minutes=i),
        **ids,
    }


def _at_once(
    engine: OnlineFeatureEngine,
    txns: list[dict[str, Any]],
    states: dict[EntityKey, State | None],
) -> np.ndarray:
    keys = {k for txn in txns for k in engine.entity_keys(txn)}
    batch = {k: states.get(k) for k in keys}
    assert (
        batch_features(engine.plan, [Txn(t) for t in txns], dict(batch)) is not None
    ), "the batch should take the vectorised path"
    rows = engine.process_batch_matrix(txns, batch)
    states.update(batch)
    return rows


def _assert_batch_is_one_by_one(
    txns: list[dict[str, Any]], history: list[dict[str, Any]] | None = None
) -> np.ndarray:
    engine = OnlineFeatureEngine(CONFIG)
    one: dict[EntityKey, State | None] = {}
    if history:
        _one_by_one(engine, history, one)
    many = copy.deepcopy(one)
    expected = _one_by_one(engine, txns, one)
    got = _at_once(engine, txns, many)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert one == many
    return got


# ------------------------------------------------------------------ optional entities

DEVICE_ONLY = [_txn(i, device_id=f"d{i % 2}") for i in range(6)]
MERCHANT_ONLY = [_txn(i, merchant_id=f"m{i % 2}") for i in range(6)]
NEITHER = [_txn(i) for i in range(6)]


@pytest.mark.parametrize(
    "txns",
    [DEVICE_ONLY, MERCHANT_ONLY, NEITHER],
    ids=["no merchant", "no device", "neither"],
)
def test_a_batch_with_no_item_of_an_entity_scores_as_one_by_one(
    txns: list[dict[str, Any]],
) -> None:
    got = _assert_batch_is_one_by_one(txns)
    names = OnlineFeatureEngine(CONFIG).feature_names
    for entity in ("merchant", "device"):
        if not any(f"{entity}_id" in t for t in txns):
            assert got[:, names.index(f"{entity}_txn_count_24h")].tolist() == [0.0] * 6


def test_a_mixed_batch_scores_as_one_by_one_with_and_without_history() -> None:
    """Items with either entity, both or neither, after a history that has them."""
    history = [
        _txn(i, merchant_id="m0", device_id="d0", amount=5.0 + i) for i in range(4)
    ]
    entities: list[dict[str, str]] = [
        {},
        {"merchant_id": "m0"},
        {"device_id": "d0"},
        {},
        {"merchant_id": "m1", "device_id": "d1"},
        {"device_id": "d0"},
    ]
    mixed = [{**_txn(10 + i), **ids} for i, ids in enumerate(entities)]
    _assert_batch_is_one_by_one(mixed, history)
    # after that history, a batch in which nobody has either entity
    _assert_batch_is_one_by_one([_txn(20 + i) for i in range(6)], history)


# ------------------------------------------------------------------ huge amounts

HUGE = [1e308, 1.7976931348623157e308, 1e200, MAX_AMOUNT, 0.0, 5e-324, 0.01, 1e155]


def _assert_finite_model_input(matrix: np.ndarray, names: list[str]) -> None:
    """Finite as float64 and as the float32 that ONNX and XGBoost score."""
    as32 = np.asarray(matrix, dtype=np.float64).astype(np.float32)
    bad = sorted({names[j] for j in np.flatnonzero(~np.isfinite(as32).all(axis=0))})
    assert not bad, f"not finite: {bad}"


def test_the_largest_amounts_on_one_merchant_keep_every_feature_finite() -> None:
    """The same user, merchant and device, amounts up to the largest float, many times:
    one by one, as a batch and in the batch (training) computation."""
    txns = [
        _txn(i, HUGE[i % len(HUGE)], user_id="u", merchant_id="m", device_id="d")
        for i in range(40)
    ]
    engine = OnlineFeatureEngine(CONFIG, available_roles=pd.DataFrame(txns).columns)
    states: dict[EntityKey, State | None] = {}
    online = _one_by_one(engine, txns, states)
    _assert_finite_model_input(online, engine.feature_names)
    # and after that history, the maximum amount again, through both online paths
    again = [
        _txn(100 + i, MAX_AMOUNT, user_id="u", merchant_id="m", device_id="d")
        for i in range(5)
    ]
    _assert_finite_model_input(
        _assert_batch_is_one_by_one(again, txns), engine.feature_names
    )
    frame = compute_features(pd.DataFrame(txns), CONFIG).frame
    names = engine.feature_names
    _assert_finite_model_input(frame[names].to_numpy(dtype=np.float64), names)
    # amounts above the maximum count as the maximum, the same online and in batch
    np.testing.assert_allclose(frame[names].to_numpy(), online, rtol=1e-9)
    assert online[:, engine.feature_names.index("amount")].max() == MAX_AMOUNT


def test_amount_features_stay_finite_at_the_extremes() -> None:
    """Directly on the formulas: the ratio to a mean of almost nothing, the z-score
    against a spread of almost nothing, and the largest amount."""
    cases = [  # amount, n, s1, s2, shift
        (MAX_AMOUNT, 3.0, 0.0, 0.0, 5e-324),  # mean of (sub)normal size
        (MAX_AMOUNT, 2.0, 2e-6, 3e-12, 0.0),  # spread just above MIN_STD
        (MAX_AMOUNT, 1.0, 0.0, 0.0, MAX_AMOUNT),
        (0.0, 5.0, 5.0 * MAX_AMOUNT, 5.0 * MAX_AMOUNT**2, 0.0),
    ]
    columns = (np.array(c, dtype=np.float64) for c in zip(*cases, strict=True))
    arrays = amount_features(*columns)
    for i, case in enumerate(cases):
        one = amount_features_one(*case)
        for name, value in one.items():
            assert np.isfinite(np.float32(value)), (name, case)
            assert value == pytest.approx(float(arrays[name][i]), rel=1e-12), name


# ------------------------------------------------------------------ time range


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1677, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        MAX_TIMESTAMP,
        datetime(2262, 4, 12, tzinfo=UTC),
        datetime(9999, 12, 31, tzinfo=UTC),
        "9999-12-31T00:00:00",
        -1,
        2**70,
    ],
)
def test_a_time_outside_the_features_range_is_refused_naming_the_field(
    when: Any,
) -> None:
    engine = OnlineFeatureEngine(CONFIG)
    txn = {**_txn(0, merchant_id="m", device_id="d"), "timestamp": when}
    with pytest.raises(FeatureInputError) as exc:
        engine.process(txn, {})
    assert exc.value.field == "timestamp"
    with pytest.raises(FeatureInputError):
        engine.process_batch_matrix([_txn(1), txn], {})


def test_the_ends_of_the_time_range_score() -> None:
    engine = OnlineFeatureEngine(CONFIG)
    last = datetime.fromtimestamp(MAX_TIMESTAMP.timestamp() - 1, UTC)
    txns = [
        {**_txn(0), "timestamp": MIN_TIMESTAMP},
        {**_txn(1), "timestamp": last},
    ]
    rows = engine.process_batch_matrix(txns, {})
    _assert_finite_model_input(rows, engine.feature_names)
