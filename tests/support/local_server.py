"""The local runtime (``python -m local``) as a subprocess on one data dir, the way an
operator runs it: started, killed, restarted on the same data; and the rows it left in
its database, read straight from the tables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, create_engine, text

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """One server process at a time on ``data_dir`` (blobs, and the SQLite file
    unless ``database_url`` names another database); each start takes a new port.
    Its output goes to ``data_dir/server.log``, whose tail failures show."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{data_dir / 'shadow_hubble.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SH_")}
        env |= {
            "SH_DATA_DIR": str(data_dir),
            "SH_LOG_LEVEL": "WARNING",
            "SH_LOCAL_TIMERS": "false",  # no scheduled audit or export mid-test
        }
        if database_url:
            env["SH_DATABASE_URL"] = database_url
        self.env = env
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not running"
        return self.proc.pid

    def start(self, timeout: float = 120.0) -> None:
        """Spawn the process and wait until /health answers 200."""
        assert self.proc is None, "already running"
        self.port = free_port()
        with self.log_path.open("ab") as sink:
            sink.write(f"---- start on port {self.port}\n".encode())
            sink.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "local", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise AssertionError(f"server exited with {code}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base_url}{API}/health", timeout=5).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server not healthy within {timeout} s:\n{self.tail()}")

    def kill(self) -> int | None:
        """SIGKILL: no shutdown code runs. Returns the exit code (None: not running)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(30)

    def stop(self) -> int | None:
        """SIGINT, the graceful stop; SIGKILL if it has not exited within 30 s."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        return proc.wait(30)

    def tail(self, lines: int = 20) -> str:
        try:
            text_ = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(line[:400] for line in text_.splitlines()[-lines:])

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout)

    # -- what the database holds (read with the server running or not) ----------------

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of one statement (none for a DELETE, committed); a list parameter
        expands (``IN :name``)."""
        stmt = text(sql)
        for name, value in params.items():
            if isinstance(value, list | tuple | set | frozenset):
                stmt = stmt.bindparams(bindparam(name, expanding=True))
        engine = create_engine(self.database_url)
        try:
            with engine.begin() as conn:
                result = conn.execute(stmt, params)
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def logged(self, transaction_ids: Iterable[str]) -> dict[str, list[str]]:
        """Prediction ids in ``predictions`` by transaction id, for these ids."""
        ids = sorted(set(transaction_ids))
        out: dict[str, list[str]] = {}
        if not ids:
            return out
        for tid, pid in self.query(
            "SELECT transaction_id, id FROM predictions WHERE transaction_id IN :ids",
            ids=ids,
        ):
            out.setdefault(str(tid), []).append(_uuid_text(pid))
        return out

    def applied_online(self, transaction_ids: Iterable[str]) -> set[str]:
        """Which of these transaction ids the online state's exactly-once records
        (``online_transactions``, any feature configuration) hold."""
        ids = sorted(set(transaction_ids))
        if not ids:
            return set()
        rows = self.query(
            "SELECT DISTINCT transaction_id FROM online_transactions "
            "WHERE transaction_id IN :ids",
            ids=ids,
        )
        return {str(r[0]) for r in rows}


def _uuid_text(value: Any) -> str:
    """A UUID column as text with dashes (SQLite stores 32 hex digits)."""
    import uuid

    return str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
