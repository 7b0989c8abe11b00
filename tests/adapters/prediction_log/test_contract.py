"""The prediction log on SQLite and PostgreSQL: rows written in the caller's transaction
(committed or rolled back with it), missing rows of replays restored, spool files of
earlier versions replayed once, labels."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from shared.db.models import MLModel, Prediction
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.services import prediction_spool as spool
from shared.services.prediction_log import (
    PredictionLog,
    PredictionRecord,
    count_predictions,
    label_predictions,
)

T = Prediction.__table__


def rec(
    i: int = 0, *, txn: str | None = None, model_id: uuid.UUID | None = None
) -> PredictionRecord:
    return PredictionRecord.new(
        model_id=model_id,
        transaction_id=txn if txn is not None else f"T{i}",
        input_features={"amount": float(i), "velocity_24h": 3.0},
        fraud_score=(i % 100) / 100,
        is_fraud=i % 100 >= 50,
        explanation={"top_features": [{"feature": "amount", "contribution": 0.25}]},
        latency_ms=1.25,
    )


@pytest.fixture
def plog(db: Database, tmp_path: Path) -> PredictionLog:
    log = PredictionLog(db, tmp_path / "spool")
    log.start()
    return log


def write(plog: PredictionLog, records: list[PredictionRecord]) -> None:
    with plog.db.engine.begin() as conn:
        plog.write(conn, records)


def db_ids(db: Database) -> list[uuid.UUID]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(T.c.id)).scalars())


def test_rows_land_with_their_values_in_the_callers_transaction(
    db: Database, plog: PredictionLog
) -> None:
    records = [rec(i) for i in range(1200)]  # more than one multi-row statement
    records[3].input_features["nan"] = float("nan")
    write(plog, records)
    with db.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(T))}
    assert set(rows) == {r.id for r in records}
    third = rows[records[3].id]
    assert third.input_features == {"amount": 3.0, "velocity_24h": 3.0, "nan": None}
    assert third.explanation == records[3].explanation
    assert third.fraud_score == 0.03 and third.is_fraud is False
    assert third.latency_ms == 1.25 and third.transaction_id == "T3"
    assert plog.stats().written == 0  # counted when the caller says it committed
    plog.committed(len(records))
    assert plog.stats().written == 1200


def test_rows_roll_back_with_the_callers_transaction(
    db: Database, plog: PredictionLog
) -> None:
    with pytest.raises(RuntimeError), db.engine.begin() as conn:
        plog.write(conn, [rec(1), rec(2)])
        raise RuntimeError("the state update failed after the log row")
    assert db_ids(db) == []


def test_repair_adds_only_the_missing_rows(db: Database, plog: PredictionLog) -> None:
    stored, missing = rec(1), rec(2)
    write(plog, [stored])
    again = dataclasses.replace(stored, created_at=datetime.now(UTC))
    assert plog.repair([again, missing]) == 1
    assert sorted(db_ids(db)) == sorted([stored.id, missing.id])
    assert plog.repair([again, missing]) == 0
    assert plog.stats().repaired == 1


def test_spool_files_of_earlier_versions_are_replayed_once(
    db: Database, tmp_path: Path
) -> None:
    """A version that logged behind its answers left spool files at shutdown; the next
    start stores their rows (skipping any already there) and deletes the files."""
    folder = tmp_path / "old-spool"
    folder.mkdir()
    a, b = rec(1), rec(2)
    lines = [spool.encode_row(r.to_row()) for r in (a, b)]
    (folder / "predictions-20261101T000000-1.jsonl").write_text(
        "\n".join([*lines, "{torn"]) + "\n"
    )
    log = PredictionLog(db, folder)
    with db.engine.begin() as conn:
        log.write(conn, [a])
    log.start()
    assert sorted(db_ids(db)) == sorted([a.id, b.id])
    assert spool.pending_files(folder) == []
    assert log.stats().replayed == 2
    PredictionLog(db, folder).start()  # nothing left to replay
    assert len(db_ids(db)) == 2


def _model(db: Database) -> uuid.UUID:
    model_id = uuid.uuid4()
    with db.engine.begin() as conn:
        conn.execute(
            insert(MLModel).values(
                id=model_id,
                name="m",
                version="1",
                algorithm="xgboost",
                storage_path="models/m/1",
                status="TRAINED",
                created_at=datetime.now(UTC),
            )
        )
    return model_id


def _labels(db: Database) -> dict[uuid.UUID, bool | None]:
    with db.engine.connect() as conn:
        return {i: label for i, label in conn.execute(select(T.c.id, T.c.actual_label))}


def test_labels_by_prediction_and_transaction_id(
    db: Database, plog: PredictionLog
) -> None:
    model_id = _model(db)
    a, b, c, d, e = (
        rec(1, txn="T1", model_id=model_id),
        rec(2, txn="T2", model_id=model_id),
        rec(3, txn="T2"),  # a second prediction of the same transaction
        rec(4, txn="T3"),
        rec(5, txn="T4"),
    )
    write(plog, [a, b, c, d, e])
    missing = uuid.uuid4()
    result = label_predictions(
        db,
        [
            {"prediction_id": a.id, "label": True},
            {"transaction_id": "T2", "label": 0},
            {"prediction_id": missing, "label": 1},
            {"transaction_id": "nope", "label": False},
            {"prediction_id": str(d.id), "label": 1},
        ],
    )
    assert result.updated == 4
    assert result.unmatched_prediction_ids == [missing]
    assert result.unmatched_transaction_ids == ["nope"]
    assert _labels(db) == {a.id: True, b.id: False, c.id: False, d.id: True, e.id: None}
    assert count_predictions(db, model_id) == 2
    assert count_predictions(db) == 5


def test_invalid_label_items_change_nothing(db: Database, plog: PredictionLog) -> None:
    a = rec(1)
    write(plog, [a])
    bad_items: list[dict[str, Any]] = [
        {"prediction_id": a.id, "label": True},
        {"prediction_id": a.id, "label": 2},
        {"transaction_id": "T1", "prediction_id": a.id, "label": True},
        {"prediction_id": "not-a-uuid", "label": True},
        {"label": False},
    ]
    with pytest.raises(ValidationFailed) as err:
        label_predictions(db, bad_items)
    fields = [d["field"] for d in err.value.details]
    assert fields == [
        "items[1].label",
        "items[2]",
        "items[3].prediction_id",
        "items[4]",
    ]
    assert _labels(db) == {a.id: None}


def test_rows_go_into_monthly_partitions_on_postgres(pg_db: Database) -> None:
    plog = PredictionLog(pg_db)
    now, old = rec(1), rec(2)
    old.created_at = datetime(2001, 1, 15, tzinfo=UTC)  # before any monthly partition
    write(plog, [now, old])
    with pg_db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, tableoid::regclass::text FROM predictions")
        )
        where = {row_id: partition for row_id, partition in rows}
    month = now.created_at
    assert where == {
        now.id: f"predictions_y{month.year}m{month.month:02d}",
        old.id: "predictions_default",
    }
