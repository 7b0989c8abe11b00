"""Where orchestration histories live, so a restarted engine can carry on.

The protocol is deliberately small so a SQL implementation is a few queries:
one row per instance plus an append-only list of JSON events.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from local.durable.history import Event, utc_now

PENDING = "Pending"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
TERMINATED = "Terminated"
FINISHED = frozenset({COMPLETED, FAILED, TERMINATED})
"""Runtime statuses, spelled as ``df.OrchestrationRuntimeStatus`` values."""


class InstanceExistsError(Exception):
    """An instance with this id is already stored."""


class InstanceRecord(NamedTuple):
    """One stored instance; the first six fields are the brief's load() tuple."""

    name: str
    input: str | None  # JSON text, as passed to the orchestrator
    events: list[Event]
    status: str
    output: Any  # JSON value: the result when Completed, the reason when Terminated
    custom_status: Any
    error: str | None
    terminate_reason: str | None  # set once a terminate was requested
    created_time: datetime
    last_updated_time: datetime


class HistoryStore(Protocol):
    """Persistence for the local Durable engine.

    Implementations must be safe to call from several threads, store events as
    JSON, and make ``append_events`` all-or-nothing.
    """

    def create_instance(
        self, instance_id: str, name: str, input_json: str | None
    ) -> None:
        """Store a new Pending instance with no events; InstanceExistsError if taken."""
        ...

    def append_events(self, instance_id: str, events: list[Event]) -> None:
        """Append events atomically (all of them or none); KeyError if unknown."""
        ...

    def load(self, instance_id: str) -> InstanceRecord:
        """The instance and its full history; KeyError if unknown."""
        ...

    def set_status(
        self,
        instance_id: str,
        status: str,
        output: Any = None,
        error: str | None = None,
        custom_status: Any = None,
    ) -> None:
        """Overwrite status, output, error and custom status together."""
        ...

    def list_unfinished(self) -> list[str]:
        """Ids of instances that are Pending or Running, oldest first."""
        ...

    def request_terminate(self, instance_id: str, reason: str) -> None:
        """Record a terminate request (seen by whichever engine runs the instance)."""
        ...

    def is_terminate_requested(self, instance_id: str) -> bool: ...


@dataclass
class _Row:
    name: str
    input: str | None
    events: list[str]
    status: str
    output: str
    custom_status: str
    error: str | None
    terminate_reason: str | None
    created_time: datetime
    last_updated_time: datetime


class InMemoryHistoryStore:
    """A HistoryStore in a dict; values are kept as JSON text, like a database
    would, so a non-serialisable event fails here too."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._lock = threading.Lock()

    def create_instance(
        self, instance_id: str, name: str, input_json: str | None
    ) -> None:
        now = utc_now()
        with self._lock:
            if instance_id in self._rows:
                raise InstanceExistsError(instance_id)
            self._rows[instance_id] = _Row(
                name, input_json, [], PENDING, "null", "null", None, None, now, now
            )

    def append_events(self, instance_id: str, events: list[Event]) -> None:
        # Encode first: a bad event must fail before the row changes.
        encoded = [json.dumps(event) for event in events]
        with self._lock:
            row = self._rows[instance_id]
            row.events.extend(encoded)
            row.last_updated_time = utc_now()

    def load(self, instance_id: str) -> InstanceRecord:
        with self._lock:
            row = self._rows[instance_id]
            return InstanceRecord(
                name=row.name,
                input=row.input,
                events=[json.loads(event) for event in row.events],
                status=row.status,
                output=json.loads(row.output),
                custom_status=json.loads(row.custom_status),
                error=row.error,
                terminate_reason=row.terminate_reason,
                created_time=row.created_time,
                last_updated_time=row.last_updated_time,
            )

    def set_status(
        self,
        instance_id: str,
        status: str,
        output: Any = None,
        error: str | None = None,
        custom_status: Any = None,
    ) -> None:
        output_json, custom_json = json.dumps(output), json.dumps(custom_status)
        with self._lock:
            row = self._rows[instance_id]
            row.status, row.output, row.error = status, output_json, error
            row.custom_status = custom_json
            row.last_updated_time = utc_now()

    def list_unfinished(self) -> list[str]:
        with self._lock:
            rows = [
                (r.created_time, i)
                for i, r in self._rows.items()
                if r.status not in FINISHED
            ]
        return [instance_id for _, instance_id in sorted(rows)]

    def request_terminate(self, instance_id: str, reason: str) -> None:
        with self._lock:
            row = self._rows[instance_id]
            if row.terminate_reason is None:
                row.terminate_reason = reason

    def is_terminate_requested(self, instance_id: str) -> bool:
        with self._lock:
            row = self._rows.get(instance_id)
            return row is not None and row.terminate_reason is not None
