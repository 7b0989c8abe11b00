"""The drift_audits migration on both databases: the table and its index come with the
upgrade, hold an audit, and go with the downgrade."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, select

from shared.db.migrate import alembic_config, upgrade
from shared.db.models import DriftAudit, MLModel
from shared.db.session import Database
from tests.support import services

BEFORE = "0007"
REVISION = "0008"


@pytest.fixture(params=["sqlite", "postgresql"])
def url_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, BEFORE)
        yield url
        return
    with services.postgres_database(BEFORE) as url:
        yield url


def test_drift_audits_come_and_go(url_before: str) -> None:
    db = Database(url_before)
    try:
        assert "drift_audits" not in inspect(db.engine).get_table_names()
        upgrade(url_before, REVISION)
        inspector = inspect(db.engine)
        assert "drift_audits" in inspector.get_table_names()
        indexes = {i["name"] for i in inspector.get_indexes("drift_audits")}
        assert "idx_drift_audits_model_window" in indexes
        model_id, end = uuid.uuid4(), datetime(2026, 12, 8, 1, 0, tzinfo=UTC)
        with db.session() as s:
            s.add(
                MLModel(
                    id=model_id,
                    name="fraud",
                    version="1.0",
                    algorithm="xgboost",
                    storage_path="models/x/",
                )
            )
            s.flush()
            s.add(
                DriftAudit(
                    model_id=model_id,
                    window="24h",
                    window_start=end - timedelta(hours=24),
                    window_end=end,
                    status="NO_DATA",
                    row_count=0,
                    computed_at=end,
                    result_path="monitoring/drift/a/result.json",
                )
            )
        with db.session() as s:
            audit = s.scalars(select(DriftAudit)).one()
            assert (audit.window_end, audit.row_count) == (end, 0)
        command.downgrade(alembic_config(url_before), BEFORE)
        db.dispose()
        assert "drift_audits" not in inspect(db.engine).get_table_names()
    finally:
        db.dispose()
