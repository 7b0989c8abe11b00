"""Packed input vectors (``predictions.input_vector``): a window read from them equals
the one read from the rows' JSON, on SQLite and PostgreSQL, for rows with a vector,
rows without one and rows whose vector does not fit the model's layout; the setting
decides which one is read."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from shared.adapters.blobs.factory import make_blob_store
from shared.adapters.feature_log.parquet_segments import ParquetSegmentFeatureLog
from shared.adapters.feature_log.sql_rows import SqlRowsFeatureLog
from shared.adapters.feature_log.vectors import pack, unpack
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import MLModel
from shared.db.session import Database
from tests.adapters.feature_log.test_contract import (
    NAMES,
    T0,
    add_model,
    assert_same,
    log,
    rows,
)
from tests.conftest import make_settings

LAYOUT = ["hour_sin", "amount", "merchant_rate", "velocity_24h"]  # the model's order
END = T0 + timedelta(hours=2)


def _mirror(db: Database, tmp_path: Path, vectors: bool) -> ParquetSegmentFeatureLog:
    store = make_blob_store(make_settings(tmp_path / ("on" if vectors else "off")))
    return ParquetSegmentFeatureLog(
        db, SqlTransactions(db), store, input_vectors=vectors
    )


def _packed(features: dict[str, Any]) -> bytes:
    values = [features.get(n) for n in LAYOUT]
    return pack(np.array([math.nan if v is None else v for v in values], np.float32))


def _model_with_layout(db: Database) -> uuid.UUID:
    model_id = add_model(db)
    with db.engine.begin() as conn:
        conn.execute(
            update(MLModel)
            .where(MLModel.id == model_id)
            .values(details={"features": LAYOUT})
        )
    return model_id


def test_pack_writes_non_finite_values_as_nan_and_unpack_selects_by_name() -> None:
    row = np.array([[1.5, math.inf, -math.inf, math.nan]], dtype=np.float32)
    got = unpack([pack(row)], ["a", "b", "c", "d"], ["d", "a", "zz", "b"])
    assert got.dtype == np.float32 and got.shape == (1, 4)
    assert got[0, 1] == np.float32(1.5)
    assert np.isnan(got[0, 0]) and np.isnan(got[0, 2]) and np.isnan(got[0, 3])


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_a_window_from_vectors_equals_the_window_from_json(
    db: Database, tmp_path: Path
) -> None:
    model_id = _model_with_layout(db)
    batch = rows(model_id, 90, T0, timedelta(seconds=40))
    for i, row in enumerate(batch):
        if i % 3 == 0:
            continue  # an older row: JSON only
        row["input_vector"] = _packed(row["input_features"])
        if i % 13 == 0:
            row["input_vector"] = row["input_vector"][:-4]  # does not fit: JSON read
    log(db, batch)
    names = [*NAMES, "never_logged"]
    reference = SqlRowsFeatureLog(db).window(model_id, T0, END, names)
    on, off = _mirror(db, tmp_path, True), _mirror(db, tmp_path, False)
    # nothing exported yet: every row comes from the table
    assert_same(on.window(model_id, T0, END, names), reference)
    assert_same(off.window(model_id, T0, END, names), reference)
    # exported from the vectors, then read from the segments: still the same
    on.export(T0 + timedelta(minutes=30))
    assert_same(on.window(model_id, T0, END, names), reference)
    on.export(END + timedelta(days=1))
    assert_same(on.window(model_id, T0, END, names), reference)


@pytest.mark.parametrize("db", ["sqlite", "postgresql"], indirect=True)
def test_the_setting_decides_whether_the_vector_or_the_json_is_read(
    db: Database, tmp_path: Path
) -> None:
    model_id = _model_with_layout(db)
    (row,) = rows(model_id, 1, T0, timedelta(seconds=1), seed=3)
    row["input_features"] = {name: 1.0 for name in NAMES}
    row["input_vector"] = _packed({name: 2.0 for name in NAMES})  # told apart
    log(db, [row])
    on = _mirror(db, tmp_path, True).window(model_id, T0, END, NAMES)
    off = _mirror(db, tmp_path, False).window(model_id, T0, END, NAMES)
    assert (on.features == 2.0).all() and (off.features == 1.0).all()
