"""The feature log readers on SQLite and PostgreSQL: the Parquet mirror (local folder and
Azurite) gives the same windows as the predictions table read row by row, through late
labels, hour boundaries, missing features, late rows, compaction, an interrupted export
and two exports racing."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, insert, select

from shared.adapters.blobs.factory import make_blob_store
from shared.adapters.feature_log.parquet_segments import (
    SEGMENTS,
    ParquetSegmentFeatureLog,
)
from shared.adapters.feature_log.sql_rows import SqlRowsFeatureLog
from shared.adapters.prediction_log.sql import SqlPredictionTable, set_labels
from shared.adapters.repositories.uow import SqlTransactions
from shared.db.models import MLModel
from shared.db.session import Database
from shared.ports import BlobStore, FeatureLogReader, LoggedWindow
from tests.conftest import make_settings

T0 = datetime(2026, 12, 8, 0, 40, tzinfo=UTC)
NAMES = ["amount", "velocity_24h", "hour_sin", "merchant_rate"]
LATER = T0 + timedelta(days=1)  # an export "now" past every row and the lag


def add_model(db: Database) -> uuid.UUID:
    model_id = uuid.uuid4()
    with db.engine.begin() as conn:
        conn.execute(
            insert(MLModel.__table__),
            {
                "id": model_id,
                "name": f"m{model_id.hex[:6]}",
                "version": "1",
                "algorithm": "xgboost",
                "storage_path": "models/x",
                "status": "PRODUCTION",
            },
        )
    return model_id


def rows(
    model_id: uuid.UUID, n: int, start: datetime, step: timedelta, seed: int = 0
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        features: dict[str, Any] = {name: rng.uniform(-5, 5) for name in NAMES}
        if i % 7 == 0:
            del features["merchant_rate"]  # missing from this row
        if i % 11 == 0:
            features["velocity_24h"] = None  # NaN, stored as null
        out.append(
            {
                "id": uuid.uuid4(),
                "created_at": start + step * i,
                "model_id": model_id,
                "transaction_id": f"T{seed}-{i}",
                "input_features": features,
                "fraud_score": rng.random(),
                "is_fraud": rng.random() > 0.5,
                "explanation": None,
                "latency_ms": None if i % 5 == 0 else rng.uniform(1, 9),
            }
        )
    return out


def log(db: Database, batch: list[dict[str, Any]]) -> None:
    with db.engine.begin() as conn:
        SqlPredictionTable(db).write(conn, batch)


def assert_same(got: LoggedWindow, want: LoggedWindow) -> None:
    assert got.feature_names == want.feature_names
    assert got.rows == want.rows
    assert (
        got.features.dtype == np.float32 and got.features.shape == want.features.shape
    )
    np.testing.assert_array_equal(got.features, want.features)
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.created_at_ns, want.created_at_ns)
    np.testing.assert_array_equal(got.latency_ms, want.latency_ms)


@pytest.fixture(params=["local", "azurite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "azurite":
        return request.getfixturevalue("azure_blobs")  # type: ignore[no-any-return]
    return make_blob_store(make_settings(tmp_path))


def mirror_on(db: Database, store: BlobStore) -> ParquetSegmentFeatureLog:
    return ParquetSegmentFeatureLog(db, SqlTransactions(db), store)


@pytest.fixture
def mirror(db: Database, store: BlobStore) -> ParquetSegmentFeatureLog:
    return mirror_on(db, store)


@pytest.fixture(params=["sql_rows", "parquet"])
def reader(
    request: pytest.FixtureRequest, db: Database, tmp_path: Path
) -> FeatureLogReader:
    if request.param == "sql_rows":
        return SqlRowsFeatureLog(db)
    return mirror_on(db, make_blob_store(make_settings(tmp_path)))


def export(reader: FeatureLogReader, now: datetime = LATER) -> None:
    if isinstance(reader, ParquetSegmentFeatureLog):
        reader.export(now)


# ---- every backend ---------------------------------------------------------------------


def test_missing_and_unknown_features_read_as_nan(
    db: Database, reader: FeatureLogReader
) -> None:
    model_id = add_model(db)
    batch = rows(model_id, 30, T0, timedelta(seconds=1))
    log(db, batch)
    export(reader)
    names = [*NAMES, "never_logged"]
    got = reader.window(model_id, T0, T0 + timedelta(hours=1), names)
    assert got.rows == 30 and got.feature_names == tuple(names)
    assert np.isnan(got.features[0, NAMES.index("merchant_rate")])  # row 0 lacks it
    assert np.isnan(got.features[0, NAMES.index("velocity_24h")])  # null
    assert np.isnan(got.features[:, -1]).all()
    assert got.features[1, 0] == np.float32(batch[1]["input_features"]["amount"])
    assert np.isnan(got.latency_ms[0]) and np.isnan(got.labels).all()
    assert list(got.created_at_ns) == sorted(got.created_at_ns)


def test_an_empty_window_has_no_rows_but_its_columns(
    db: Database, reader: FeatureLogReader
) -> None:
    model_id = add_model(db)
    log(db, rows(model_id, 5, T0, timedelta(minutes=1)))
    export(reader)
    got = reader.window(model_id, T0 - timedelta(hours=3), T0, NAMES)
    assert got.rows == 0 and got.features.shape == (0, len(NAMES))
    assert got.labels.shape == got.created_at_ns.shape == (0,)
    assert reader.window(uuid.uuid4(), T0, LATER, NAMES).rows == 0


# ---- the mirror against the table -------------------------------------------------------


def test_windows_across_hours_equal_the_tables_before_and_after_labels(
    db: Database, mirror: ParquetSegmentFeatureLog
) -> None:
    model_id, other = add_model(db), add_model(db)
    batch = rows(model_id, 400, T0, timedelta(seconds=37))  # 0:40 to about 4:46
    log(db, batch)
    log(db, rows(other, 50, T0, timedelta(minutes=1), seed=1))
    assert mirror.export(T0 + timedelta(hours=2, minutes=10)) > 0  # part of it
    reference = SqlRowsFeatureLog(db)
    windows = [
        (T0, LATER),
        (T0 + timedelta(minutes=20), T0 + timedelta(hours=1, minutes=20)),  # straddles
        (datetime(2026, 12, 8, 2, tzinfo=UTC), datetime(2026, 12, 8, 3, tzinfo=UTC)),
        (T0 + timedelta(hours=3), LATER),  # only the table's tail
    ]
    for start, end in windows:
        assert_same(
            mirror.window(model_id, start, end, NAMES),
            reference.window(model_id, start, end, NAMES),
        )
    labelled = {row["id"]: i % 3 == 0 for i, row in enumerate(batch) if i % 2 == 0}
    set_labels(db, {}, labelled)  # labels arrive after the export
    mirror.export(LATER)
    for start, end in windows:
        got = mirror.window(model_id, start, end, NAMES)
        assert_same(got, reference.window(model_id, start, end, NAMES))
    full = mirror.window(model_id, T0, LATER, NAMES)
    assert np.count_nonzero(~np.isnan(full.labels)) == len(labelled)
    assert full.rows == 400


def test_rows_committed_late_are_read_at_once_and_mirrored_by_the_next_export(
    db: Database, mirror: ParquetSegmentFeatureLog
) -> None:
    model_id = add_model(db)
    log(db, rows(model_id, 100, T0, timedelta(seconds=30)))
    mirror.export(LATER)
    late = rows(model_id, 3, T0 + timedelta(minutes=5), timedelta(hours=1), seed=2)
    log(db, late)  # below the watermark: a slow transaction, a replay
    reference = SqlRowsFeatureLog(db)
    assert_same(
        mirror.window(model_id, T0, LATER, NAMES),
        reference.window(model_id, T0, LATER, NAMES),
    )
    assert mirror.export(LATER) >= 3
    assert ledger_rows(db, model_id) == 103
    assert_same(
        mirror.window(model_id, T0, LATER, NAMES),
        reference.window(model_id, T0, LATER, NAMES),
    )


def test_compaction_leaves_one_segment_per_closed_hour(
    db: Database, mirror: ParquetSegmentFeatureLog, store: BlobStore
) -> None:
    model_id = add_model(db)
    log(db, rows(model_id, 240, T0, timedelta(seconds=60)))  # 0:40 to 4:39
    for minutes in range(30, 300, 20):  # many small exports
        mirror.export(T0 + timedelta(minutes=minutes) + mirror.lag)
    before = segments(db, model_id)
    assert len(before) > 6
    mirror.compact()
    after = segments(db, model_id)
    hours = [h for h, _ in after]
    closed = [h for h in hours if h + timedelta(hours=1) <= max(t for _, t in after)]
    assert len(closed) == len(set(closed))
    mark = max(t for _, t in after)
    assert ledger_rows(db, model_id) == 240 - count_after(db, model_id, mark)
    files = store.list(f"feature-log/model={model_id}")
    assert len(files) == len(after)  # the merged segments' files are gone
    assert_same(
        mirror.window(model_id, T0, LATER, NAMES),
        SqlRowsFeatureLog(db).window(model_id, T0, LATER, NAMES),
    )


def test_an_interrupted_export_loses_and_duplicates_nothing(
    db: Database, mirror: ParquetSegmentFeatureLog, store: BlobStore
) -> None:
    model_id = add_model(db)
    log(db, rows(model_id, 200, T0, timedelta(seconds=50)))

    class Crash(Exception):
        pass

    def crashing(write: bool = False) -> Any:
        raise Crash  # the segments are uploaded, the ledger is never written

    crashed = ParquetSegmentFeatureLog(db, crashing, store)
    with pytest.raises(Crash):
        crashed.export(LATER)
    assert store.list(f"feature-log/model={model_id}")  # files without ledger rows
    assert segments(db, model_id) == []
    assert_same(  # the orphans are not read: everything comes from the table
        mirror.window(model_id, T0, LATER, NAMES),
        SqlRowsFeatureLog(db).window(model_id, T0, LATER, NAMES),
    )
    assert mirror.export(LATER) == 200  # a restarted worker
    assert mirror.export(LATER) == 0
    assert ledger_rows(db, model_id) == 200
    assert_same(
        mirror.window(model_id, T0, LATER, NAMES),
        SqlRowsFeatureLog(db).window(model_id, T0, LATER, NAMES),
    )


def test_two_racing_exports_mirror_each_row_once(
    db: Database, mirror: ParquetSegmentFeatureLog, store: BlobStore
) -> None:
    model_id = add_model(db)
    log(db, rows(model_id, 150, T0, timedelta(seconds=60)))
    other = mirror_on(db, store)
    put = store.put_bytes
    raced: list[int] = []

    def put_then_race(path: str, data: bytes) -> None:
        put(path, data)
        if not raced:  # the other worker runs a whole export in between
            raced.append(other.export(LATER))

    mirror.blobs = type("Racing", (), {})()  # type: ignore[assignment]
    for name in ("get_bytes", "exists", "list", "delete_prefix", "download_file"):
        setattr(mirror.blobs, name, getattr(store, name))
    mirror.blobs.put_bytes = put_then_race  # type: ignore[attr-defined]
    if hasattr(store, "local_path"):
        mirror.blobs.local_path = store.local_path  # type: ignore[attr-defined]
    assert mirror.export(LATER) == 0  # it lost the race and dropped its files
    assert raced == [150]
    assert ledger_rows(db, model_id) == 150
    assert len(store.list(f"feature-log/model={model_id}")) == len(
        segments(db, model_id)
    )
    assert_same(
        mirror.window(model_id, T0, LATER, NAMES),
        SqlRowsFeatureLog(db).window(model_id, T0, LATER, NAMES),
    )


# ---- helpers ---------------------------------------------------------------------------


def segments(db: Database, model_id: uuid.UUID) -> list[tuple[datetime, datetime]]:
    with db.engine.connect() as conn:
        return [
            (h, t)
            for h, t in conn.execute(
                select(SEGMENTS.c.hour, SEGMENTS.c.created_to)
                .where(SEGMENTS.c.model_id == model_id)
                .order_by(SEGMENTS.c.created_from)
            )
        ]


def ledger_rows(db: Database, model_id: uuid.UUID) -> int:
    with db.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.coalesce(func.sum(SEGMENTS.c.rows), 0)).where(
                    SEGMENTS.c.model_id == model_id
                )
            ).scalar_one()
        )


def count_after(db: Database, model_id: uuid.UUID, mark: datetime) -> int:
    window = SqlRowsFeatureLog(db).window(model_id, mark, LATER, [])
    return window.rows
