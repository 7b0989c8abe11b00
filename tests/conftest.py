"""Fixtures: the app context on each database (SQLite, PostgreSQL) and blob store (local
folder, Azurite), and an HTTP client on the real ASGI app."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shared.adapters.blobs.factory import make_blob_store
from shared.config import Settings
from shared.container import Container, use
from shared.db.migrate import upgrade
from shared.db.models import Base
from shared.db.session import Database
from shared.ports import BlobStore
from tests.support import services

# servers the tests start (``python -m local``) run no timers: no scheduled audit or
# export in the middle of a test (tests/local/test_scheduler.py runs them on purpose)
os.environ.setdefault("SH_LOCAL_TIMERS", "false")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once, copy per test: Alembic on every test would dominate the run."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with services.postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def azurite_conn() -> Iterator[str]:
    with services.azurite() as conn:
        yield conn


def _truncate_all(db: Database) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path / "data", log_json=False, **overrides)


@pytest.fixture
def sqlite_db(tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    path = tmp_path / "test.db"
    shutil.copyfile(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[Database]:
    db = Database(pg_url)
    _truncate_all(db)
    yield db
    db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture
def azure_blobs(azurite_conn: str, tmp_path: Path) -> BlobStore:
    container = f"t{tmp_path.name.replace('_', '').lower()[-40:]}"
    settings = make_settings(
        tmp_path,
        storage_backend="azure",
        storage_connection_string=azurite_conn,
        storage_container=container,
    )
    return make_blob_store(settings)


@pytest.fixture(params=["local", "azurite"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "azurite":
        return request.getfixturevalue("azure_blobs")  # type: ignore[no-any-return]
    return make_blob_store(make_settings(tmp_path))


# The two deployments users run: embedded (SQLite + folder) and Azure (PostgreSQL + Blob).
STACKS = {"embedded": ("sqlite_db", None), "azure": ("pg_db", "azure_blobs")}


@pytest.fixture(params=list(STACKS))
def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    db_fixture, blob_fixture = STACKS[request.param]
    database: Database = request.getfixturevalue(db_fixture)
    settings = make_settings(tmp_path, max_upload_mb=5, preview_max_rows=500)
    store = (
        request.getfixturevalue(blob_fixture)
        if blob_fixture
        else make_blob_store(settings)
    )
    context = Container(settings=settings, db=database, blobs=store)
    use(context)
    yield context
    context.close()
    use(None)


@pytest.fixture
def client(ctx: Container) -> Iterator[TestClient]:
    from functions.api.app import create_asgi_app

    with TestClient(create_asgi_app(), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def runtime(ctx: Container) -> Iterator[Any]:
    """The embedded runtime's job engine on the test context (history in its database)."""
    from local.runtime import LocalRuntime

    rt = LocalRuntime(ctx, poll_interval=0.2)
    rt.start()
    yield rt
    rt.stop()
