"""Several server processes on one port, for the local runtime.

One Python process scores on about one core (the GIL), so ``python -m local --workers
N`` starts N processes that accept on the same port (SO_REUSEPORT: the kernel spreads
connections across them). The first, the primary, also runs the job engine; the others
hand the jobs they create to it over a private control socket. Everything else they
share through the database: the online feature state (cached per process, checked by
version), the prediction log, the model registry. SQLite writers of all processes take
turns through ``SqliteWriteTurn``.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import urllib.request
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from shared.ports import JobLauncher

log = logging.getLogger("shadow_hubble.local")

CONTROL_PATH = "/_local/jobs"
TOKEN_HEADER = "x-local-token"


def listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A bound, listening TCP socket; with ``reuse_port`` other workers may bind the
    same address too."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class RemoteLauncher:
    """A worker's launcher: asks the primary's job engine to start or cancel a job.
    The job row is already written by then, so a failed hand-off leaves a QUEUED job
    that the primary's restart reconciles, never a half-made one."""

    def __init__(self, control_url: str, token: str, timeout: float = 10.0) -> None:
        self.control_url = control_url
        self.token = token
        self.timeout = timeout

    def _post(self, action: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.control_url}{CONTROL_PATH}/{action}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", TOKEN_HEADER: self.token},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
            resp.read()

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        self._post(
            "launch",
            {"orchestrator": orchestrator, "job_id": job_id, "payload": payload},
        )

    def cancel(self, job_id: str, reason: str) -> None:
        self._post("cancel", {"job_id": job_id, "reason": reason})


class PrimaryControl:
    """ASGI wrapper on the primary: serves the workers' job hand-offs (token-checked,
    on the private control socket's requests as on any other) and passes everything
    else to the app."""

    def __init__(self, app: ASGIApp, launcher: JobLauncher, token: str) -> None:
        self.app = app
        self.launcher = launcher
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(CONTROL_PATH + "/"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(TOKEN_HEADER.encode(), b"")
        status = 404
        if hmac.compare_digest(given, self.token) and scope["method"] == "POST":
            body = b""
            more = True
            while more:
                message = await receive()
                body += message.get("body", b"")
                more = message.get("more_body", False)
            request = json.loads(body)
            action = path.rsplit("/", 1)[-1]
            if action == "launch":
                self.launcher.launch(
                    request["orchestrator"], request["job_id"], request["payload"]
                )
                status = 204
            elif action == "cancel":
                self.launcher.cancel(request["job_id"], request["reason"])
                status = 204
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})
