"""Migration 0007 on both databases: the feature log's segment ledger and the labelled
rows' partial index come and go with it, rows logged before it stay readable."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import inspect, text

from shared.db.migrate import alembic_config, upgrade
from shared.db.session import Database
from tests.support import services


@pytest.fixture(params=["sqlite", "postgresql"])
def url_at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0006")
        yield url
        return
    with services.postgres_database("0006") as url:
        yield url


def test_0007_adds_the_segment_ledger_and_the_labelled_index_and_back(
    url_at_0006: str,
) -> None:
    db = Database(url_at_0006)
    try:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO predictions (id, created_at, input_features, "
                    "fraud_score, is_fraud, actual_label) VALUES "
                    "(:id, :at, '{}', 0.5, false, true)"
                ),
                {
                    "id": uuid.uuid4().hex if "sqlite" in url_at_0006 else uuid.uuid4(),
                    "at": datetime(2026, 12, 8, 1, tzinfo=UTC),
                },
            )
        upgrade(url_at_0006)
        names = inspect(db.engine).get_table_names()
        assert "feature_log_segments" in names
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("predictions")}
        assert "idx_predictions_labelled" in indexes
        command.downgrade(alembic_config(url_at_0006), "0006")
        db.engine.dispose()
        assert "feature_log_segments" not in inspect(db.engine).get_table_names()
        indexes = {i["name"] for i in inspect(db.engine).get_indexes("predictions")}
        assert "idx_predictions_labelled" not in indexes
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM predictions")).scalar() == 1
    finally:
        db.dispose()
