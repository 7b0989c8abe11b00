"""The local runtime: ``python -m local`` serves the same app the Functions host would,
at http://localhost:7071/api/v1 (PORT overrides), after bringing the schema up to date.

``--workers N`` (or SH_LOCAL_WORKERS) serves from N processes on the same port; the
first also runs the job engine (see ``local/workers.py``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("shadow_hubble.local")

_ROLE = "SH_LOCAL_ROLE"
_CONTROL = "SH_LOCAL_CONTROL_URL"
_TOKEN = "SH_LOCAL_TOKEN"


def _serve(app: object, sockets: Sequence[socket.socket]) -> None:
    # start-up ran with the collector off (see main); the scoring service's freezer
    # (shared/gc_freezer.py, SH_GC_FREEZE_SECONDS) keeps the cached states out of it
    gc.enable()
    import uvicorn

    config = uvicorn.Config(app, log_config=None, access_log=False)  # type: ignore[arg-type]
    _server(config).run(sockets=sockets)  # type: ignore[arg-type]


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's server, minus one step: after its graceful shutdown on Ctrl-C or
    SIGTERM it raises the signal again, still inside the event loop, where asyncio's
    runner turns SIGINT into a KeyboardInterrupt that cancels the lifespan task, and
    Starlette logged that as an ERROR with a traceback at every stop. This process is
    the program: once the server has shut down there is nothing left to interrupt."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return Server(config)


def _exit_quietly(_sig: int, _frame: FrameType | None) -> None:
    """A secondary worker stopped while it is still starting (the primary stops its
    workers with SIGINT, and the benchmark stops a new server at once): it has served
    nothing and holds nothing to write, so it leaves without a KeyboardInterrupt
    traceback from the middle of an import. Once serving, uvicorn's handler takes over
    (a graceful shutdown)."""
    os._exit(0)


def _worker(host: str, port: int) -> None:
    """A secondary process: serves the API; jobs go to the primary's engine."""
    from function_app import asgi_app
    from local.workers import RemoteLauncher, listen
    from shared.container import container

    ctx = container()
    ctx.launcher = RemoteLauncher(os.environ[_CONTROL], os.environ[_TOKEN])
    try:
        _serve(asgi_app, [listen(host, port, reuse_port=True)])
    finally:
        ctx.db.dispose()


def _spawn_workers(
    count: int, host: str, port: int, control_url: str, token: str
) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        _ROLE: "worker",
        _CONTROL: control_url,
        _TOKEN: token,
        "SH_RUN_MIGRATIONS": "false",
    }
    command = [sys.executable, "-m", "local", "--host", host, "--port", str(port)]
    return [subprocess.Popen(command, env=env) for _ in range(count)]


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.send_signal(
                signal.SIGINT
            )  # graceful: each flushes its prediction log
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Shadow Hubble locally")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SH_LOCAL_WORKERS", "1")),
        help="server processes on the port (one Python process uses about one core)",
    )
    args = parser.parse_args()
    if os.environ.get(_ROLE) == "worker":
        signal.signal(signal.SIGINT, _exit_quietly)
    from shared.config import get_settings
    from shared.logging_setup import configure_logging

    # Start-up builds only long-lived objects, which full collections would walk
    # several times over; _serve turns the collector back on.
    gc.disable()
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if os.environ.get(_ROLE) == "worker":
        _worker(args.host, args.port)
        return
    if settings.run_migrations:
        from shared.db.migrate import upgrade_if_behind

        upgrade_if_behind(settings.resolved_database_url)

    from function_app import asgi_app
    from local.runtime import LocalRuntime
    from local.workers import PrimaryControl, listen
    from shared.container import container

    ctx = container()
    runtime = LocalRuntime(ctx, timers=settings.local_timers)
    runtime.start()
    extra = max(0, args.workers - 1)
    public = listen(args.host, args.port, reuse_port=extra > 0)
    sockets = [public]
    app: object = asgi_app
    children: list[subprocess.Popen[bytes]] = []
    if extra:
        token = secrets.token_hex(16)
        control = listen("127.0.0.1", 0, reuse_port=False)
        sockets.append(control)
        app = PrimaryControl(asgi_app, ctx.launcher, token)
        control_url = f"http://127.0.0.1:{control.getsockname()[1]}"
        children = _spawn_workers(extra, args.host, args.port, control_url, token)

    log.info(
        "Shadow Hubble on http://%s:%s/api/v1 (docs: /api/v1/docs), backend=%s, "
        "workers=%d",
        args.host,
        args.port,
        settings.backend,
        1 + extra,
    )
    try:
        _serve(app, sockets)
    finally:
        _stop(children)
        runtime.stop()
        ctx.db.dispose()


if __name__ == "__main__":
    main()
