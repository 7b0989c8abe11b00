"""The schema on both databases: every table, the partitioned predictions table on
PostgreSQL, and the one-production-model-per-name rule."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from shared.db.migrate import alembic_config, upgrade
from shared.db.models import Base, Job, MLModel, TrainingJob
from shared.db.partitions import ensure_prediction_partitions
from shared.db.session import Database
from tests.support import services

SPEC_TABLES = {
    "users",
    "datasets",
    "feature_sets",
    "ml_models",
    "baselines",
    "predictions",
    "drift_metrics",
    "bias_metrics",
    "protected_attributes",
    "alerts",
    "training_jobs",
}


def test_every_table_exists(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert SPEC_TABLES <= tables
    assert set(Base.metadata.tables) <= tables | {"alembic_version"}


def test_only_one_production_model_per_name(db: Database) -> None:
    def model(version: str, status: str) -> MLModel:
        return MLModel(
            id=uuid.uuid4(),
            name="fraud",
            version=version,
            algorithm="xgboost",
            storage_path=f"models/{version}",
            status=status,
        )

    with db.session() as s:
        s.add_all(
            [model("1", "PRODUCTION"), model("2", "STAGING"), model("3", "ARCHIVED")]
        )
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(model("4", "PRODUCTION"))


def test_predictions_are_partitioned_ahead_on_postgres(pg_db: Database) -> None:
    with pg_db.engine.begin() as conn:
        strategy = conn.execute(
            text(
                "SELECT partstrat FROM pg_partitioned_table p "
                "JOIN pg_class c ON c.oid = p.partrelid WHERE c.relname = 'predictions'"
            )
        ).scalar()
        assert strategy == "r"
        created = ensure_prediction_partitions(
            conn, months_ahead=2, today=date(2031, 12, 15)
        )
        assert created == [
            "predictions_y2031m11",
            "predictions_y2031m12",
            "predictions_y2032m01",
            "predictions_y2032m02",
        ]
        parts = set(
            conn.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'predictions'"
                )
            ).scalars()
        )
        assert set(created) | {"predictions_default"} <= parts
        conn.execute(
            text(
                "INSERT INTO predictions (id, created_at, input_features, fraud_score, is_fraud)"
                " VALUES (gen_random_uuid(), '2032-01-05T10:00:00Z', '{}', 0.5, false)"
            )
        )
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM predictions")
        ).scalar()
        assert where == "predictions_y2032m01"


@contextmanager
def _database_at(kind: str, revision: str, tmp_path: Path) -> Iterator[str]:
    """A new database of ``kind`` migrated up to ``revision`` only."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, revision)
        yield url
        return
    with services.postgres_database(revision) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0002(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database_at(request.param, "0002", tmp_path) as url:
        yield url


@pytest.mark.slow
def test_0003_moves_snapshots_out_of_the_head_rows_and_back(url_at_0002: str) -> None:
    """States written before 0003 (in the head row) are still served after it, and a
    downgrade puts them back."""
    blob = b'{"v": 1}' * 1000
    row = "('ns', 'merchant', 'm1', :state, :now, 5, 3, 42)"
    columns = (
        "(namespace, entity_type, entity_id, state, updated_at, seq, snapshot_seq, gen)"
    )
    db = Database(url_at_0002)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(f"INSERT INTO feature_entity_state {columns} VALUES {row}"),
                {"state": blob, "now": datetime.now(UTC)},
            )
            conn.execute(
                text(
                    f"INSERT INTO feature_entity_state {columns} VALUES "
                    "('ns', 'user', 'u1', :state, :now, 1, 0, 7)"
                ),
                {"state": b"", "now": datetime.now(UTC)},
            )
        upgrade(url_at_0002)
        with db.engine.connect() as conn:
            heads = conn.execute(
                text(
                    "SELECT entity_id, seq, snapshot_seq, gen FROM feature_entity_state"
                )
            ).all()
            snapshots = conn.execute(
                text(
                    "SELECT entity_id, gen, snapshot_seq, state "
                    "FROM feature_entity_snapshots"
                )
            ).all()
        assert sorted(tuple(h) for h in heads) == [("m1", 5, 3, 42), ("u1", 1, 0, 7)]
        assert [tuple(s) for s in snapshots] == [("m1", 42, 3, blob)]
        command.downgrade(alembic_config(url_at_0002), "0002")
        with db.engine.connect() as conn:
            states = dict(
                conn.execute(
                    text("SELECT entity_id, state FROM feature_entity_state")
                ).all()
            )
        # rows without a snapshot get the column's empty default (text on SQLite)
        assert bytes(states["m1"]) == blob
        assert not states["u1"]
    finally:
        db.dispose()


def test_head_is_read_from_the_files_as_alembic_reads_it() -> None:
    from alembic.script import ScriptDirectory

    from shared.db.migrate import head_revision

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert head_revision() == script.get_current_head()


def test_upgrade_if_behind_runs_only_when_needed(tmp_path: Path) -> None:
    from shared.db.migrate import upgrade_if_behind

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert upgrade_if_behind(url) is True  # a new database
    assert upgrade_if_behind(url) is False  # at head: nothing to do
    command.downgrade(alembic_config(url), "0002")
    assert upgrade_if_behind(url) is True
    db = Database(url)
    try:
        assert set(Base.metadata.tables) <= set(inspect(db.engine).get_table_names())
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database_at(request.param, "0003", tmp_path) as url:
        yield url


@pytest.mark.slow
def test_0004_keeps_online_records_and_their_json_both_ways(url_at_0003: str) -> None:
    """Records written as JSONB read back the same as plain JSON after 0004, and after
    a downgrade (SQLite: text both ways)."""
    features = {"amount": 12.5, "hour": 15.0, "user_txn_count": 3.0}
    db = Database(url_at_0003)

    def column_types() -> set[str]:
        if db.dialect != "postgresql":
            return set()
        with db.engine.connect() as conn:
            return set(
                conn.execute(
                    text(
                        "SELECT data_type FROM information_schema.columns WHERE "
                        "table_name = 'online_transactions' "
                        "AND column_name IN ('features', 'entity_keys')"
                    )
                ).scalars()
            )

    def stored() -> tuple[Any, Any]:
        with db.engine.connect() as conn:
            keys, found = conn.execute(
                text("SELECT entity_keys, features FROM online_transactions")
            ).one()
        decode = json.loads
        return (
            decode(keys) if isinstance(keys, str) else keys,
            decode(found) if isinstance(found, str) else found,
        )

    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO online_transactions (namespace, transaction_id, "
                    "event_time, entity_keys, features, created_at) VALUES "
                    "('ns', 't1', :now, :keys, :features, :now)"
                ),
                {
                    "now": datetime.now(UTC),
                    "keys": json.dumps([["user", "u1"]]),
                    "features": json.dumps(features),
                },
            )
        before = column_types()
        upgrade(url_at_0003)
        assert stored() == ([["user", "u1"]], features)
        after = column_types()
        command.downgrade(alembic_config(url_at_0003), "0003")
        assert stored() == ([["user", "u1"]], features)
        if db.dialect == "postgresql":
            assert (before, after, column_types()) == ({"jsonb"}, {"json"}, {"jsonb"})
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database_at(request.param, "0005", tmp_path) as url:
        yield url


def test_0006_moves_training_jobs_into_jobs_and_back(url_at_0005: str) -> None:
    """Training jobs written before 0006 become jobs of kind 'training' (QUEUED becomes
    PENDING) with their detail kept by job id, and a downgrade puts them back."""
    queued, failed = uuid.uuid4(), uuid.uuid4()
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    db = Database(url_at_0005)
    insert = text(
        "INSERT INTO training_jobs (id, name, algorithm, hyperparameters, config, "
        "status, progress, error_message, created_at) VALUES "
        "(:id, :name, 'xgboost', :params, :config, :status, :progress, :error, :at)"
    )

    def key(value: uuid.UUID) -> str:
        return str(value) if db.dialect == "postgresql" else value.hex

    try:
        with db.engine.begin() as conn:
            for job_id, status, progress, error in (
                (queued, "QUEUED", 0.0, None),
                (failed, "FAILED", 0.4, "no label"),
            ):
                conn.execute(
                    insert,
                    {
                        "id": key(job_id),
                        "name": f"fraud-{status}",
                        "params": json.dumps({"max_depth": 4}),
                        "config": json.dumps({"seed": 42}),
                        "status": status,
                        "progress": progress,
                        "error": error,
                        "at": created.replace(tzinfo=None),
                    },
                )
        upgrade(url_at_0005)
        with db.session() as s:
            jobs = {j.id: j for j in s.scalars(select(TrainingJob))}
            assert set(s.scalars(select(Job.kind))) == {"training"}
        assert jobs[queued].status == "PENDING"
        assert (jobs[failed].status, jobs[failed].error_message) == (
            "FAILED",
            "no label",
        )
        assert jobs[failed].progress == pytest.approx(0.4)
        assert jobs[queued].name == "fraud-QUEUED"
        assert jobs[queued].hyperparameters == {"max_depth": 4}
        assert jobs[queued].created_at == created
        command.downgrade(alembic_config(url_at_0005), "0005")
        with db.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, status, progress, error_message FROM training_jobs")
            ).all()
            left = conn.execute(text("SELECT count(*) FROM jobs")).scalar()
        assert sorted(tuple(r) for r in rows) == [
            ("fraud-FAILED", "FAILED", pytest.approx(0.4), "no label"),
            ("fraud-QUEUED", "QUEUED", 0.0, None),
        ]
        assert left == 0
    finally:
        db.dispose()
