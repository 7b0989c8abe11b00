"""Hand a job to whatever runs orchestrations: the local engine, or Durable Functions on
Azure through a Service Bus queue read by a starter function that has the durable
client binding (the HTTP app has none). The job id is the orchestration instance id."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)

JOBS_QUEUE = "shadow-hubble-jobs"


def start_message(orchestrator: str, job_id: str, payload: dict[str, Any]) -> str:
    """The queue message the starter function turns into ``client.start_new``."""
    return json.dumps(
        {
            "action": "start",
            "orchestrator": orchestrator,
            "instance_id": job_id,
            "input": payload,
        }
    )


def cancel_message(job_id: str, reason: str) -> str:
    return json.dumps({"action": "terminate", "instance_id": job_id, "reason": reason})


class LocalEngineLauncher:
    """The embedded runtime: orchestrations run in-process on the local Durable engine."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        self.engine.start_new(orchestrator, instance_id=job_id, input=payload)

    def cancel(self, job_id: str, reason: str) -> None:
        try:
            self.engine.terminate(job_id, reason)
        except KeyError:
            pass  # never started or already gone: the job row carries the state


class ServiceBusLauncher:
    """Azure: a message per job on the jobs queue (managed identity or connection string)."""

    def __init__(
        self,
        queue: str = JOBS_QUEUE,
        connection_string: str | None = None,
        namespace: str | None = None,
    ) -> None:
        self.queue = queue
        self.connection_string = connection_string
        self.namespace = namespace

    def _send(self, body: str, job_id: str) -> None:
        from azure.servicebus import ServiceBusClient, ServiceBusMessage

        if self.connection_string:
            client = ServiceBusClient.from_connection_string(self.connection_string)
        elif self.namespace:
            from azure.identity import DefaultAzureCredential

            client = ServiceBusClient(self.namespace, DefaultAzureCredential())
        else:
            raise RuntimeError(
                "Set SH_SERVICEBUS_CONNECTION_STRING or SH_SERVICEBUS_NAMESPACE to launch jobs"
            )
        with client, client.get_queue_sender(self.queue) as sender:
            sender.send_messages(
                ServiceBusMessage(
                    body,
                    message_id=f"{job_id}:{len(body)}",
                    content_type="application/json",
                )
            )

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        self._send(start_message(orchestrator, job_id, payload), job_id)

    def cancel(self, job_id: str, reason: str) -> None:
        self._send(cancel_message(job_id, reason), job_id)


class NoLauncher:
    """Before a runtime has attached one: jobs stay PENDING, with a log line that says why."""

    def launch(self, orchestrator: str, job_id: str, payload: dict[str, Any]) -> None:
        log.warning(
            "no job launcher attached; job %s (%s) stays PENDING", job_id, orchestrator
        )

    def cancel(self, job_id: str, reason: str) -> None:
        return None
