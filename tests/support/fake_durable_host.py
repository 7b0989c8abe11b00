"""A stand-in for the Durable Functions extension's HTTP API, served on 127.0.0.1.

On Azure the Functions host hands a ``durableClient`` binding to Python as a JSON string;
``azure.durable_functions.DurableOrchestrationClient`` parses it and talks to the extension
over HTTP at ``rpcBaseUrl`` (``http://127.0.0.1:17071/durabletask/`` in a real host). This
server answers the calls a client-function makes, the way the extension does:

* ``GET  {rpc}instances/{id}``                     status: 404 with an empty body when the
  instance is unknown, else 202 (Pending/Running/ContinuedAsNew) or 200 with the status JSON;
* ``POST {rpc}orchestrators/{name}[/{id}]``         start: 202 with the management payload,
  400 with ``ExceptionMessage`` when no orchestrator function of that name exists;
* ``POST {rpc}instances/{id}/terminate?reason=...`` terminate: 202 when in progress, 410 when
  already finished, 404 when unknown.

Every request is recorded, so a test can assert exactly what reached "Durable".
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TASK_HUB = "ShadowHubbleHub"
RPC_PREFIX = "/durabletask/"
IN_PROGRESS = {"Pending", "Running", "ContinuedAsNew"}
FINISHED = {"Completed", "Failed", "Terminated", "Canceled"}


@dataclass
class Request:
    """One HTTP request as the fake extension received it."""

    method: str
    path: str  # decoded path, without the query string
    query: dict[str, str]
    body: bytes
    kind: str = ""  # "status", "start", "terminate" or "unknown"
    orchestrator: str | None = None
    instance_id: str | None = None

    @property
    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def orchestration_input(self) -> Any:
        """The input as the orchestrator will read it. The Python SDK posts
        ``json=df_dumps(input)``, so the body is a JSON string holding the input's JSON
        (the extension stores that string and ``context.get_input()`` decodes it)."""
        value = self.json_body
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Instance:
    name: str
    instance_id: str
    runtime_status: str
    input: Any = None
    output: Any = None
    created: str = field(default_factory=lambda: _now())
    updated: str = field(default_factory=lambda: _now())

    def status_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instanceId": self.instance_id,
            "createdTime": self.created,
            "lastUpdatedTime": self.updated,
            "input": None,  # not shown unless showInput=true, as in the extension
            "output": self.output,
            "runtimeStatus": self.runtime_status,
            "customStatus": None,
            "history": None,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeDurableHost:
    """Run with ``with FakeDurableHost(orchestrators={...}) as host:``."""

    def __init__(self, orchestrators: set[str] | frozenset[str] = frozenset()) -> None:
        self.orchestrators = set(orchestrators)
        self.instances: dict[str, Instance] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeDurableHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host._handle(self, "GET")

            def do_POST(self) -> None:
                host._handle(self, "POST")

            def do_DELETE(self) -> None:
                host._handle(self, "DELETE")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-durable-host",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeDurableHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what a test uses --------------------------------------------------------------------

    @property
    def origin(self) -> str:
        assert self._server is not None, "start() the fake host first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def rpc_base_url(self) -> str:
        return f"{self.origin}{RPC_PREFIX}"

    def client_binding(self) -> str:
        """The ``durableClient`` input binding's value, as the host passes it to Python: a
        JSON string (Durable extension 2.x shape, URLs pointing at this server)."""
        base = f"{self.origin}/runtime/webhooks/durabletask"
        qs = f"taskHub={TASK_HUB}&connection=Storage&code=fake-system-key"
        inst = f"{base}/instances/INSTANCEID"
        return json.dumps(
            {
                "taskHubName": TASK_HUB,
                "creationUrls": {
                    "createNewInstancePostUri": (
                        f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]?code=k"
                    ),
                    "createAndWaitOnNewInstancePostUri": (
                        f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
                        "?timeout={timeoutInSeconds}&pollingInterval="
                        "{intervalInSeconds}&code=k"
                    ),
                },
                "managementUrls": {
                    "id": "INSTANCEID",
                    "statusQueryGetUri": f"{inst}?{qs}",
                    "sendEventPostUri": f"{inst}/raiseEvent/{{eventName}}?{qs}",
                    "terminatePostUri": f"{inst}/terminate?reason={{text}}&{qs}",
                    "rewindPostUri": f"{inst}/rewind?reason={{text}}&{qs}",
                    "purgeHistoryDeleteUri": f"{inst}?{qs}",
                    "restartPostUri": f"{inst}/restart?{qs}",
                    "suspendPostUri": f"{inst}/suspend?reason={{text}}&{qs}",
                    "resumePostUri": f"{inst}/resume?reason={{text}}&{qs}",
                },
                "baseUrl": base,
                "requiredQueryStringParameters": "code=fake-system-key",
                "rpcBaseUrl": self.rpc_base_url,
                "httpBaseUrl": "",
                "maxGrpcMessageSizeInBytes": 0,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )

    def add_instance(
        self, instance_id: str, runtime_status: str, name: str = "orchestrator"
    ) -> Instance:
        inst = Instance(
            name=name, instance_id=instance_id, runtime_status=runtime_status
        )
        with self._lock:
            self.instances[instance_id] = inst
        return inst

    def requests_of(self, kind: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # the extension's answers -------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        req = Request(method=method, path=unquote(split.path), query=query, body=body)
        with self._lock:
            self.requests.append(req)
            status, payload = self._route(req)
        data = b"" if payload is None else json.dumps(payload).encode()
        handler.send_response(status)
        if data:
            handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        if data:
            handler.wfile.write(data)

    def _route(self, req: Request) -> tuple[int, Any]:
        if not req.path.startswith(RPC_PREFIX):
            req.kind = "unknown"
            return 404, None
        parts = [p for p in req.path[len(RPC_PREFIX) :].split("/") if p]
        if req.method == "GET" and len(parts) == 2 and parts[0] == "instances":
            req.kind, req.instance_id = "status", parts[1]
            inst = self.instances.get(parts[1])
            if inst is None:
                return 404, None
            code = 202 if inst.runtime_status in IN_PROGRESS else 200
            return code, inst.status_json()
        if (
            req.method == "POST"
            and parts[:1] == ["orchestrators"]
            and len(parts) in (2, 3)
        ):
            req.kind, req.orchestrator = "start", parts[1]
            req.instance_id = parts[2] if len(parts) == 3 else uuid.uuid4().hex
            if req.orchestrator not in self.orchestrators:
                return 400, {
                    "ExceptionMessage": (
                        f"The function '{req.orchestrator}' doesn't exist, is disabled, "
                        "or is not an orchestrator function."
                    )
                }
            self.instances[req.instance_id] = Instance(
                name=req.orchestrator,
                instance_id=req.instance_id,
                runtime_status="Pending",
                input=req.orchestration_input,
            )
            return 202, self._management_payload(req.instance_id)
        if (
            req.method == "POST"
            and len(parts) == 3
            and parts[0] == "instances"
            and parts[2] == "terminate"
        ):
            req.kind, req.instance_id = "terminate", parts[1]
            inst = self.instances.get(parts[1])
            if inst is None:
                return 404, None
            if inst.runtime_status in FINISHED:
                return 410, None
            inst.runtime_status = "Terminated"
            inst.output = req.query.get("reason")
            inst.updated = _now()
            return 202, None
        req.kind = "unknown"
        return 404, None

    def _management_payload(self, instance_id: str) -> dict[str, str]:
        base = f"{self.origin}/runtime/webhooks/durabletask/instances/{instance_id}"
        qs = f"taskHub={TASK_HUB}&connection=Storage&code=fake-system-key"
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{base}?{qs}",
            "sendEventPostUri": f"{base}/raiseEvent/{{eventName}}?{qs}",
            "terminatePostUri": f"{base}/terminate?reason={{text}}&{qs}",
            "rewindPostUri": f"{base}/rewind?reason={{text}}&{qs}",
            "purgeHistoryDeleteUri": f"{base}?{qs}",
            "restartPostUri": f"{base}/restart?{qs}",
            "suspendPostUri": f"{base}/suspend?reason={{text}}&{qs}",
            "resumePostUri": f"{base}/resume?reason={{text}}&{qs}",
        }
