"""Real services for the tests: a fresh PostgreSQL database and an Azurite process.

Outside CI a missing service skips the tests that need it; under CI=true it fails them,
so a green CI run always means both were really exercised.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN = os.environ.get(
    "SH_TEST_PG_ADMIN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL = os.environ.get(
    "SH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
)


def unavailable(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} not available")


@contextmanager
def postgres_database(revision: str = "head") -> Iterator[str]:
    """A new database on the local server migrated to ``revision``, dropped
    afterwards."""
    import psycopg

    from shared.db.migrate import upgrade

    name = f"sh_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable(f"PostgreSQL ({exc})")
        raise
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = PG_URL.format(db=name)
    try:
        upgrade(url, revision)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def azurite_connection_string(port: int) -> str:
    # Azurite's documented well-known development account and key.
    return (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
        "KBHBeksoGMGw==;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


@contextmanager
def azurite() -> Iterator[str]:
    """Azurite's blob service from node_modules (npm ci), on a free port."""
    binary = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        unavailable("Azurite (run `npm ci`)")
    port = _free_port()
    location = tempfile.mkdtemp(prefix="sh-azurite-")
    proc = subprocess.Popen(
        [
            str(binary),
            "--silent",
            "--loose",
            "--skipApiVersionCheck",
            "--inMemoryPersistence",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
        ],
        cwd=location,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not _wait_port(port, 30):
            proc.kill()
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            unavailable(f"Azurite (did not start within 30 s: {err[-500:]})")
        yield azurite_connection_string(port)
    finally:
        proc.terminate()
        try:  # in memory, nothing to lose: it often outlives SIGTERM by 10 s and more
            proc.wait(1)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(location, ignore_errors=True)
