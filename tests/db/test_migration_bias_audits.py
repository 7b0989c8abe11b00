"""The bias audits migration on both databases: the bias_audits table, the column
linking bias_metrics to their audit and predictions.protected_values come with the
upgrade (existing prediction rows kept, their protected values null) and go with the
downgrade."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from shared.db.migrate import alembic_config, upgrade
from shared.db.session import Database
from tests.support import services

BEFORE = "0008"
REVISION = "0009"


@pytest.fixture(params=["sqlite", "postgresql"])
def url_before(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, BEFORE)
        yield url
        return
    with services.postgres_database(BEFORE) as url:
        yield url


def _columns(db: Database, table: str) -> set[str]:
    return {c["name"] for c in inspect(db.engine).get_columns(table)}


def test_bias_audits_come_and_go(url_before: str) -> None:
    db = Database(url_before)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO predictions (id, created_at, input_features, "
                    "fraud_score, is_fraud) VALUES ('00000000000000000000000000000001'"
                    ", '2026-12-08 01:00:00+00:00', '{}', 0.5, false)"
                    if db.engine.dialect.name == "sqlite"
                    else "INSERT INTO predictions (id, created_at, input_features, "
                    "fraud_score, is_fraud) VALUES "
                    "('00000000-0000-0000-0000-000000000001', "
                    "'2026-12-08 01:00:00+00', '{}', 0.5, false)"
                )
            )
        assert "bias_audits" not in inspect(db.engine).get_table_names()
        upgrade(url_before, REVISION)
        db.dispose()
        inspector = inspect(db.engine)
        assert "bias_audits" in inspector.get_table_names()
        indexes = {i["name"] for i in inspector.get_indexes("bias_audits")}
        assert "idx_bias_audits_model_source" in indexes
        assert "audit_id" in _columns(db, "bias_metrics")
        assert "protected_values" in _columns(db, "predictions")
        with db.engine.connect() as conn:
            kept = conn.execute(text("SELECT protected_values FROM predictions")).all()
        assert kept == [(None,)]
        command.downgrade(alembic_config(url_before), BEFORE)
        db.dispose()
        assert "bias_audits" not in inspect(db.engine).get_table_names()
        assert "audit_id" not in _columns(db, "bias_metrics")
        assert "protected_values" not in _columns(db, "predictions")
    finally:
        db.dispose()
