"""An upload interrupted by kill -9 leaves its spool file behind; the next start of the
local server sweeps it. Uploads spool under the data dir, never in the system temp dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
API = "/api/v1"
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    )


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited while starting"
        try:
            if httpx.get(f"{base}{API}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not answer /health")


@contextmanager
def _server(
    port: int, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "local", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server)
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _start_upload(port: int, total: int, sent: int) -> socket.socket:
    """A multipart upload of ``total`` body bytes of which only ``sent`` are sent:
    the client then stalls, as over a slow link."""
    boundary = "spoolboundary"
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
        "a,b\r\n"
    ).encode()
    request = (
        f"POST {API}/datasets HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {total}\r\n\r\n"
    ).encode()
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(request + head)
    row = b"1,2\r\n" * (MB // 5)
    done = len(head)
    while done < sent:
        conn.sendall(row)
        done += len(row)
    return conn


@pytest.mark.slow
def test_a_killed_upload_leaves_no_spool_after_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    spool = data_dir / "upload-spool"
    port = _free_port()
    env = {
        **os.environ,
        "SH_DATA_DIR": str(data_dir),
        "SH_LOG_LEVEL": "WARNING",
        "TMPDIR": str(system_tmp),
    }
    log = tmp_path / "server.log"

    with _server(port, env, log) as server:
        conn = _start_upload(port, total=129 * MB, sent=24 * MB)
        try:
            # poll until the server has spooled a good part of what was sent
            deadline = time.monotonic() + 60
            spooled: list[Path] = []
            while time.monotonic() < deadline:
                spooled = [
                    p
                    for p in _files(spool) + _files(system_tmp)
                    if p.stat().st_size > 8 * MB
                ]
                if spooled:
                    break
                time.sleep(0.05)
            assert spooled, "the upload never reached the disk"
            assert all(p.is_relative_to(spool) for p in spooled), spooled
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=30)
        finally:
            conn.close()
    assert _files(spool), "the killed upload should have left its spool file"

    with _server(port, env, log):
        assert _files(spool) == []
        resp = httpx.post(
            f"http://127.0.0.1:{port}{API}/datasets",
            data={"name": "small"},
            files={"file": ("s.csv", b"a,b\n1,2\n", "text/csv")},
            timeout=60,
        )
        assert resp.status_code == 201, resp.text
        assert _files(spool) == []  # a finished upload removes its own files
    assert _files(system_tmp) == [], _files(system_tmp)


def test_the_sweep_spares_folders_of_live_processes(tmp_path: Path) -> None:
    """Servers sharing a data dir (``--workers``) start at different times: a sweep
    removes only what processes that are gone left behind."""
    from shared.config import Settings
    from shared.services.upload_spool import sweep_upload_spool

    settings = Settings(data_dir=tmp_path / "data", log_json=False)
    spool = settings.resolved_upload_spool_dir
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        # this process's own pid names a dead predecessor's folder: the sweep runs
        # before the process serves anything
        for pid in (gone.pid, alive.pid, os.getpid()):
            (spool / str(pid) / "upload-x").mkdir(parents=True)
            (spool / str(pid) / "upload-x" / "part").write_bytes(b"x" * 100)
        (spool / "stray-file").write_bytes(b"x")
        assert sweep_upload_spool(settings) == 3
        assert sorted(p.name for p in spool.iterdir()) == [str(alive.pid)]
        assert _files(spool / str(alive.pid))
    finally:
        alive.kill()
        alive.wait()
