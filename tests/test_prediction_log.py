"""The prediction log on SQLite and PostgreSQL: batched writes, many writers, flush and
close, retries, spilling to disk and replaying exactly once, labels."""

from __future__ import annotations

import math
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text

from shared.db.models import MLModel, Prediction
from shared.db.session import Database
from shared.errors import ValidationFailed
from shared.services.prediction_log import (
    PredictionLog,
    PredictionLogClosed,
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


LogFactory = Callable[..., PredictionLog]


@pytest.fixture
def make_log(tmp_path: Path) -> Iterator[LogFactory]:
    """Logs with short delays and backoff; whatever a test leaves open is closed."""
    made: list[PredictionLog] = []

    def make(db: Database, start: bool = True, **options: Any) -> PredictionLog:
        options = {"max_delay": 0.01, "retry_base": 0.01, "retry_max": 0.05} | options
        plog = PredictionLog(db, tmp_path / "spool", **options)
        made.append(plog)
        if start:
            plog.start()
        return plog

    yield make
    for plog in made:
        plog.close(0.5)


class Outage:
    """INSERTs into predictions fail as when the server is away (the driver's own
    OperationalError): the first ``first`` attempts, and every one while ``down``."""

    def __init__(self, db: Database, first: int = 0, down: bool = False) -> None:
        self.engine = db.engine
        self.remaining = first
        self.down = down
        self.failures = 0
        self.inserted_ids: list[uuid.UUID] = []  # in the order they went through
        event.listen(self.engine, "before_cursor_execute", self._hook)

    def _hook(
        self,
        conn: Any,
        _cursor: Any,
        statement: str,
        params: Any,
        _ctx: Any,
        many: bool,
    ) -> None:
        if not statement.startswith(("INSERT INTO predictions", "COPY predictions")):
            return
        if self.down or self.remaining > 0:
            self.remaining -= 1
            self.failures += 1
            raise conn.dialect.loaded_dbapi.OperationalError("simulated outage")
        columns = [
            c.strip()
            for c in statement[statement.index("(") + 1 :].split(")")[0].split(",")
        ]
        at = columns.index("id")
        # rows (COPY or executemany, PostgreSQL) or a multi-row statement's values
        ids = [r[at] for r in params] if many else params[at :: len(columns)]
        self.inserted_ids += [uuid.UUID(str(i)) for i in ids]

    def remove(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._hook)


def db_ids(db: Database) -> list[uuid.UUID]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(T.c.id)).scalars())


def spool_files(tmp_path: Path, prefix: str = "predictions-") -> list[Path]:
    folder = tmp_path / "spool"
    return sorted(folder.glob(f"{prefix}*")) if folder.exists() else []


def unreachable(db: Database, tmp_path: Path) -> Database:
    """The same kind of database, but nothing answers (refused port / not a file)."""
    if db.dialect == "postgresql":
        return Database("postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    return Database(f"sqlite:///{tmp_path}")  # a directory: unable to open


def test_batched_writes_land_with_their_values(
    db: Database, make_log: LogFactory
) -> None:
    statements: list[int] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def count(_c: Any, _k: Any, stmt: str, params: Any, _x: Any, many: bool) -> None:
        if stmt.startswith(("INSERT INTO predictions", "COPY predictions")):
            columns = stmt[stmt.index("(") + 1 : stmt.index(")")].count(",") + 1
            statements.append(len(params) if many else len(params) // columns)

    plog = make_log(db, batch_size=1000)
    rows = [rec(i) for i in range(2500)]
    rows[7].input_features["velocity_24h"] = math.nan  # JSONB has no NaN: stored null
    plog.record_many(rows)
    assert plog.flush(10)
    event.remove(db.engine, "before_cursor_execute", count)

    # SQLite: writes of batch_size rows (1000, 1000, 500: the write turn is shared
    # with scoring), in multi-row statements of up to 500 rows; PostgreSQL: a backlog
    # in writes of up to bulk_size (2000) rows, then the 500 left, one COPY each
    expected = [500] * 5 if db.dialect == "sqlite" else [2000, 500]
    assert plog.bulk_size == (1000 if db.dialect == "sqlite" else 2000)
    assert statements == expected
    assert count_predictions(db) == 2500
    assert plog.pending == 0 and plog.written == 2500
    with db.engine.connect() as conn:
        got = conn.execute(select(T).where(T.c.id == rows[60].id)).mappings().one()
        nan_row = conn.execute(select(T).where(T.c.id == rows[7].id)).mappings().one()
    assert got["created_at"] == rows[60].created_at
    assert got["transaction_id"] == "T60"
    assert got["input_features"] == {"amount": 60.0, "velocity_24h": 3.0}
    assert got["fraud_score"] == 0.6 and got["is_fraud"] is True
    assert got["explanation"] == rows[60].explanation
    assert got["latency_ms"] == 1.25 and got["actual_label"] is None
    assert nan_row["input_features"] == {"amount": 7.0, "velocity_24h": None}


def test_a_lone_row_is_written_after_max_delay_without_flush(
    db: Database, make_log: LogFactory
) -> None:
    plog = make_log(db, max_delay=0.05)
    plog.record(rec(1))
    deadline = time.monotonic() + 5
    while count_predictions(db) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert count_predictions(db) == 1


def test_record_does_no_database_work_on_the_callers_thread(
    db: Database, make_log: LogFactory
) -> None:
    threads: set[int] = set()

    @event.listens_for(db.engine, "before_cursor_execute")
    def who(*_args: Any) -> None:
        threads.add(threading.get_ident())

    plog = make_log(db)
    for i in range(2000):
        plog.record(rec(i))
    assert plog.flush(10)
    event.remove(db.engine, "before_cursor_execute", who)
    assert threads and threading.get_ident() not in threads
    assert count_predictions(db) == 2000


def test_record_may_come_before_start(db: Database, make_log: LogFactory) -> None:
    plog = make_log(db, start=False)  # no writer yet: records wait in the queue
    for i in range(10_000):
        plog.record(rec(i))
    assert plog.pending == 10_000 and count_predictions(db) == 0
    plog.start()
    assert plog.flush(10)
    assert count_predictions(db) == 10_000


def test_concurrent_record_from_8_threads(db: Database, make_log: LogFactory) -> None:
    plog = make_log(db)
    per_thread = [[rec(t * 1000 + i) for i in range(1000)] for t in range(8)]
    barrier = threading.Barrier(8)

    def work(rows: list[PredictionRecord]) -> None:
        barrier.wait()
        for row in rows:
            plog.record(row)

    workers = [threading.Thread(target=work, args=(rows,)) for rows in per_thread]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert plog.flush(20)
    ids = db_ids(db)
    assert len(ids) == 8000 == len(set(ids))
    assert set(ids) == {r.id for rows in per_thread for r in rows}


def test_flush_returns_once_everything_before_it_is_committed(
    db: Database, make_log: LogFactory
) -> None:
    plog = make_log(db, max_delay=30.0)  # without flush, rows would wait 30 s
    assert plog.flush(1)  # nothing recorded: at once
    rows = [rec(i) for i in range(10)]
    for row in rows:
        plog.record(row)
    start = time.monotonic()
    assert plog.flush(5)
    assert time.monotonic() - start < 2
    assert set(db_ids(db)) == {r.id for r in rows}


def test_flush_reports_failure_while_the_database_is_away(
    db: Database, make_log: LogFactory
) -> None:
    outage = Outage(db, down=True)
    try:
        plog = make_log(db)
        plog.record_many(rec(i) for i in range(30))
        start = time.monotonic()
        assert plog.flush(0.3) is False
        assert 0.25 <= time.monotonic() - start < 3
        assert plog.pending == 30 and count_predictions(db) == 0
        outage.down = False
        assert plog.flush(10)
        assert count_predictions(db) == 30 and plog.pending == 0
    finally:
        outage.remove()


def test_close_drains_the_queue(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    plog = make_log(db, max_delay=30.0)
    plog.record_many(rec(i) for i in range(3000))
    assert plog.close(10) is True
    assert count_predictions(db) == 3000
    assert spool_files(tmp_path) == []
    with pytest.raises(PredictionLogClosed):
        plog.record(rec(1))
    assert plog.close(1) is True  # idempotent


def test_database_down_at_close_spools_then_start_replays_exactly_once(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    down = unreachable(db, tmp_path)
    try:
        first = make_log(down)
        rows = [rec(i) for i in range(1200)]
        first.record_many(rows)
        start = time.monotonic()
        assert first.close(0.3) is True  # True: everything is on disk
        assert time.monotonic() - start < 3  # the deadline holds
    finally:
        down.dispose()
    files = spool_files(tmp_path)
    assert files and sum(len(p.read_text().splitlines()) for p in files) == 1200
    assert first.stats().spilled == 1200
    assert count_predictions(db) == 0
    backup = tmp_path / "backup"
    backup.mkdir()
    for p in files:
        shutil.copy(p, backup / p.name)

    second = make_log(db)  # start() replays before it returns
    assert sorted(db_ids(db)) == sorted(r.id for r in rows)
    assert second.stats().replayed == 1200
    assert spool_files(tmp_path) == []

    make_log(db)  # a second start finds nothing left
    # a crash after the commit but before the delete: the same files replay again
    for p in backup.iterdir():
        shutil.copy(p, tmp_path / "spool" / p.name)
    third = make_log(db)
    assert count_predictions(db) == 1200
    assert spool_files(tmp_path) == []
    assert third.stats().replayed == 1200  # read again, inserted none twice
    assert third.stats().rejected == 0 and spool_files(tmp_path, "rejected-") == []
    with db.engine.connect() as conn:
        got = conn.execute(select(T).where(T.c.id == rows[5].id)).mappings().one()
    assert got["created_at"] == rows[5].created_at
    assert got["input_features"] == rows[5].input_features
    assert got["explanation"] == rows[5].explanation


def test_a_batch_with_a_row_already_stored_lands_the_rest_once(
    db: Database, make_log: LogFactory
) -> None:
    """A retried batch whose first commit went through in part: on PostgreSQL the
    COPY refuses it whole and the insert that skips stored rows takes over."""
    statements: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def seen(_c: Any, _k: Any, stmt: str, *_: Any) -> None:
        if "predictions" in stmt:
            statements.append(stmt.split(" (")[0])

    rows = [rec(i) for i in range(1200)]
    plog = make_log(db)
    plog.record_many(rows[100:101])
    assert plog.flush(10)
    plog.record_many(rows)
    assert plog.flush(10)
    event.remove(db.engine, "before_cursor_execute", seen)
    assert sorted(db_ids(db)) == sorted(r.id for r in rows)
    assert plog.stats().rejected == 0
    if db.dialect == "postgresql":  # one row alone: no COPY; then COPY, refused
        assert statements[:3] == [
            "INSERT INTO predictions",
            "COPY predictions",
            "INSERT INTO predictions",
        ]


def test_failing_batches_are_retried_in_order(
    db: Database, make_log: LogFactory
) -> None:
    outage = Outage(db, first=3)
    try:
        plog = make_log(db, batch_size=500)
        rows = [rec(i) for i in range(1500)]
        plog.record_many(rows)
        assert plog.flush(10)
    finally:
        outage.remove()
    assert outage.failures == 3
    stats = plog.stats()
    assert stats.failed_attempts == 3 and stats.retried_batches == 1
    assert outage.inserted_ids == [r.id for r in rows]  # nothing skipped or reordered
    assert count_predictions(db) == 1500


def test_the_writer_outlives_thousands_of_failed_attempts(
    db: Database, make_log: LogFactory
) -> None:
    outage = Outage(db, down=True)
    try:
        plog = make_log(db, retry_base=1e-6, retry_max=1e-5)
        rows = [rec(i) for i in range(5)]
        plog.record_many(rows)
        deadline = time.monotonic() + 10
        while outage.failures < 1500 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outage.failures >= 1500
        outage.down = False
        assert plog.flush(10)
    finally:
        outage.remove()
    stats = plog.stats()
    assert stats.running and stats.retried_batches == 1
    assert stats.failed_attempts >= 1500
    assert set(db_ids(db)) == {r.id for r in rows}


def test_a_long_outage_spills_to_disk_and_replays_when_back(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    outage = Outage(db, down=True)
    try:
        plog = make_log(db, batch_size=50, high_water=200)
        rows = [rec(i) for i in range(1000)]
        for row in rows:
            plog.record(row)
        deadline = time.monotonic() + 5
        while plog.spilled < 600 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert plog.spilled >= 600 and spool_files(tmp_path)
        assert plog.pending == 1000 and not plog.flush(0.1)
        outage.down = False
        assert plog.flush(10)
    finally:
        outage.remove()
    ids = db_ids(db)
    assert len(ids) == 1000 and set(ids) == {r.id for r in rows}
    assert spool_files(tmp_path) == []
    assert plog.stats().replayed == plog.spilled


def test_with_database_and_disk_both_failing_record_blocks_instead_of_dropping(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    outage = Outage(db, down=True)
    try:
        plog = make_log(db, batch_size=10, high_water=10)  # hard limit: 40 queued
        rows = [rec(i) for i in range(80)]
        done = threading.Event()

        def produce() -> None:
            for row in rows:
                plog.record(row)
            done.set()

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(0.5)
        assert not done.is_set()  # backpressure: the producer waits
        assert plog.pending <= 40 + 10 and plog.spilled == 0
        outage.down = False
        assert done.wait(10)
        producer.join()
        assert plog.flush(10)
    finally:
        outage.remove()
    ids = db_ids(db)
    assert len(ids) == 80 and set(ids) == {r.id for r in rows}


def test_close_reports_rows_it_could_keep_nowhere(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    (tmp_path / "spool").write_text("a file where the spool folder should be")
    outage = Outage(db, down=True)
    try:
        plog = make_log(db)
        plog.record_many(rec(i) for i in range(20))
        start = time.monotonic()
        assert plog.close(0.2) is False
        assert time.monotonic() - start < 3
        assert not plog.stats().running
    finally:
        outage.remove()


def test_a_log_closed_before_it_started_keeps_its_rows_for_the_next(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    plog = make_log(db, start=False)
    rows = [rec(i) for i in range(25)]
    plog.record_many(rows)
    assert plog.close(1) is True
    assert count_predictions(db) == 0 and spool_files(tmp_path)
    make_log(db)
    assert set(db_ids(db)) == {r.id for r in rows}


def test_a_row_the_database_refuses_is_set_aside_not_blocking_the_rest(
    db: Database, make_log: LogFactory, tmp_path: Path
) -> None:
    plog = make_log(db)
    rows = [rec(i) for i in range(100)]
    bad = rec(999, model_id=uuid.uuid4())  # no such model: foreign key violation
    rows.insert(40, bad)
    plog.record_many(rows)
    assert plog.flush(10)
    ids = set(db_ids(db))
    assert len(ids) == 100 and bad.id not in ids
    assert plog.stats().rejected == 1
    (kept,) = spool_files(tmp_path, "rejected-")
    assert str(bad.id) in kept.read_text()


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
    db: Database, make_log: LogFactory
) -> None:
    model_id = _model(db)
    plog = make_log(db, max_delay=30.0)  # labels must flush the log themselves
    a, b, c, d, e = (
        rec(1, txn="T1", model_id=model_id),
        rec(2, txn="T2", model_id=model_id),
        rec(3, txn="T2"),  # a second prediction of the same transaction
        rec(4, txn="T3"),
        rec(5, txn="T4"),
    )
    plog.record_many([a, b, c, d, e])
    missing = uuid.uuid4()
    result = label_predictions(
        db,
        plog,
        [
            {"prediction_id": a.id, "label": True},
            {"transaction_id": "T2", "label": 0},
            {"prediction_id": missing, "label": 1},
            {"transaction_id": "nope", "label": False},
            {"prediction_id": str(d.id), "label": 1},
        ],
    )
    assert result.flushed
    assert result.updated == 4
    assert result.unmatched_prediction_ids == [missing]
    assert result.unmatched_transaction_ids == ["nope"]
    assert _labels(db) == {a.id: True, b.id: False, c.id: False, d.id: True, e.id: None}
    assert count_predictions(db, model_id) == 2
    assert count_predictions(db) == 5


def test_invalid_label_items_change_nothing(db: Database, make_log: LogFactory) -> None:
    plog = make_log(db)
    a = rec(1)
    plog.record(a)
    bad_items: list[dict[str, Any]] = [
        {"prediction_id": a.id, "label": True},
        {"prediction_id": a.id, "label": 2},
        {"transaction_id": "T1", "prediction_id": a.id, "label": True},
        {"prediction_id": "not-a-uuid", "label": True},
        {"label": False},
    ]
    with pytest.raises(ValidationFailed) as err:
        label_predictions(db, plog, bad_items)
    fields = [d["field"] for d in err.value.details]
    assert fields == [
        "items[1].label",
        "items[2]",
        "items[3].prediction_id",
        "items[4]",
    ]
    assert plog.flush(5)
    assert _labels(db) == {a.id: None}


def test_rows_go_into_monthly_partitions_on_postgres(
    pg_db: Database, make_log: LogFactory
) -> None:
    plog = make_log(pg_db)
    now, old = rec(1), rec(2)
    old.created_at = datetime(2001, 1, 15, tzinfo=UTC)  # before any monthly partition
    plog.record_many([now, old])
    assert plog.flush(10)
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
