"""The Service Bus starter that hands jobs to Durable Functions on Azure.

Neither the Functions host, Service Bus nor the Durable extension runs here, so the test
takes what each of them would: the bindings the app declares to the host (the JSON the
worker sends at indexing), a message built by the SDK's own Service Bus converter, and the
``durableClient`` binding as the JSON string the host passes, whose ``rpcBaseUrl`` points
at a fake of the extension's HTTP API (tests/support/fake_durable_host.py). The
``DurableOrchestrationClient`` is the SDK's real one, built by the SDK's own wrapper.
"""

from __future__ import annotations

import asyncio
import json
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.durable_functions.models.utils import http_utils
from azure.functions.meta import Datum
from azure.functions.servicebus import ServiceBusMessageInConverter

from shared.adapters.launcher import JOBS_QUEUE, cancel_message, start_message
from tests.support.fake_durable_host import FakeDurableHost

ORCHESTRATOR = "features_orchestrator"


def _index_app() -> dict[str, func.Function]:
    """``function_app.app.get_functions()``, as the worker calls it at indexing. The SDK
    app refuses a second call in one process (it remembers the names it has validated, in
    ``functions_bindings``), so index with that memo cleared and leave it as found."""
    import function_app

    app = function_app.app
    memo = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = memo
    return {f.get_function_name(): f for f in functions}


@pytest.fixture(scope="module")
def functions() -> dict[str, func.Function]:
    return _index_app()


@pytest.fixture(scope="module")
def starter(functions: dict[str, func.Function]) -> func.Function:
    assert "jobs_starter" in functions, sorted(functions)
    return functions["jobs_starter"]


@pytest.fixture
def durable(functions: dict[str, func.Function]) -> Iterator[FakeDurableHost]:
    """The fake extension knows the orchestrator functions the app declares."""
    orchestrators = {
        name
        for name, fn in functions.items()
        if any(b["type"] == "orchestrationTrigger" for b in _bindings(fn))
    }
    with FakeDurableHost(orchestrators=orchestrators) as host:
        yield host


def _bindings(fn: func.Function) -> list[dict[str, Any]]:
    return [json.loads(b) for b in fn.get_raw_bindings()]


def _service_bus_message(body: str, message_id: str) -> func.ServiceBusMessage:
    """The message as the Python worker builds it from the host's invocation request."""
    msg = ServiceBusMessageInConverter.decode(
        Datum(body, "string"),
        trigger_metadata={
            "MessageId": Datum(message_id, "string"),
            "ContentType": Datum("application/json", "string"),
            "DeliveryCount": Datum(1, "int"),
            "UserProperties": Datum("{}", "json"),
            "ApplicationProperties": Datum("{}", "json"),
        },
    )
    assert isinstance(msg, func.ServiceBusMessage)
    return msg


def deliver(
    starter: func.Function, host: FakeDurableHost, body: str, job_id: str
) -> None:
    """Invoke the starter as the worker does: keyword arguments named after the bindings,
    the durable client as the binding's JSON string (the SDK's wrapper builds the client)."""
    msg = _service_bus_message(body, message_id=f"{job_id}:{len(body)}")

    async def invocation() -> None:
        try:
            await starter.get_user_function()(msg=msg, client=host.client_binding())
        finally:
            # The SDK keeps one aiohttp session per process, bound to the worker's single
            # event loop; each asyncio.run here is a new loop, so close it with the loop.
            await http_utils._close_session()

    asyncio.run(invocation())


def new_job_id() -> str:
    return str(uuid.uuid4())


# -- what the host indexes -----------------------------------------------------------------


def test_starter_bindings_are_what_the_host_indexes(
    functions: dict[str, func.Function], starter: func.Function
) -> None:
    bindings = _bindings(starter)
    trigger = [b for b in bindings if b["type"] == "serviceBusTrigger"]
    assert len(trigger) == 1, bindings
    assert trigger[0]["direction"] == "IN"
    assert trigger[0]["queueName"] == JOBS_QUEUE
    assert trigger[0]["connection"] == "ServiceBusConnection"
    client = [b for b in bindings if b["type"] == "durableClient"]
    assert len(client) == 1, bindings
    assert client[0]["direction"] == "IN"
    assert {trigger[0]["name"], client[0]["name"]} == {"msg", "client"}
    assert starter.get_trigger() is not None

    # The worker checks parameter types against the bindings: the trigger parameter must
    # be a ServiceBusMessage, and the SDK re-annotates the client parameter as ``str``.
    hints = typing.get_type_hints(starter.get_user_function())
    assert ServiceBusMessageInConverter.check_input_type_annotation(hints["msg"])
    assert hints["client"] is str

    # The orchestrator the API names in its start messages is one the app declares.
    assert any(
        b["type"] == "orchestrationTrigger" for b in _bindings(functions[ORCHESTRATOR])
    )


def test_the_api_starts_the_orchestrator_declared_here() -> None:
    from shared.services import features

    assert features.ORCHESTRATOR == ORCHESTRATOR


# -- start ---------------------------------------------------------------------------------


def test_start_for_an_unknown_instance_starts_it_once(
    starter: func.Function, durable: FakeDurableHost
) -> None:
    job_id = new_job_id()
    payload = {"job_id": job_id, "options": {"window_days": [1, 7], "note": "ü & ?"}}

    deliver(starter, durable, start_message(ORCHESTRATOR, job_id, payload), job_id)

    statuses = durable.requests_of("status")
    assert [r.instance_id for r in statuses] == [job_id]
    starts = durable.requests_of("start")
    assert len(starts) == 1, durable.requests
    start = starts[0]
    assert start.path == f"/durabletask/orchestrators/{ORCHESTRATOR}/{job_id}"
    assert start.orchestrator == ORCHESTRATOR
    assert start.instance_id == job_id
    assert start.orchestration_input == payload
    assert durable.requests_of("terminate") == []
    assert durable.requests_of("unknown") == []
    assert durable.instances[job_id].runtime_status == "Pending"


def test_a_redelivered_start_message_starts_nothing_more(
    starter: func.Function, durable: FakeDurableHost
) -> None:
    """Service Bus delivers at least once: the same message twice is one orchestration."""
    job_id = new_job_id()
    body = start_message(ORCHESTRATOR, job_id, {"job_id": job_id})

    deliver(starter, durable, body, job_id)
    deliver(starter, durable, body, job_id)

    assert len(durable.requests_of("status")) == 2
    assert [r.instance_id for r in durable.requests_of("start")] == [job_id]


@pytest.mark.parametrize(
    "runtime_status", ["Pending", "Running", "Completed", "Failed", "Terminated"]
)
def test_start_for_an_existing_instance_starts_nothing(
    starter: func.Function, durable: FakeDurableHost, runtime_status: str
) -> None:
    job_id = new_job_id()
    durable.add_instance(job_id, runtime_status, name=ORCHESTRATOR)

    deliver(
        starter,
        durable,
        start_message(ORCHESTRATOR, job_id, {"job_id": job_id}),
        job_id,
    )

    assert [r.instance_id for r in durable.requests_of("status")] == [job_id]
    assert durable.requests_of("start") == []
    assert durable.requests_of("terminate") == []
    assert durable.instances[job_id].runtime_status == runtime_status


# -- terminate -----------------------------------------------------------------------------


@pytest.mark.parametrize("runtime_status", ["Running", "Pending"])
def test_terminate_for_an_instance_in_progress_terminates_it_with_the_reason(
    starter: func.Function, durable: FakeDurableHost, runtime_status: str
) -> None:
    job_id = new_job_id()
    durable.add_instance(job_id, runtime_status, name=ORCHESTRATOR)
    reason = "cancelled by user: too slow & costly?"

    deliver(starter, durable, cancel_message(job_id, reason), job_id)

    assert [r.instance_id for r in durable.requests_of("status")] == [job_id]
    terminates = durable.requests_of("terminate")
    assert len(terminates) == 1, durable.requests
    assert terminates[0].path == f"/durabletask/instances/{job_id}/terminate"
    assert terminates[0].query == {"reason": reason}
    assert durable.requests_of("start") == []
    assert durable.instances[job_id].runtime_status == "Terminated"


@pytest.mark.parametrize("runtime_status", ["Completed", "Failed", "Terminated"])
def test_terminate_for_a_finished_instance_does_nothing(
    starter: func.Function, durable: FakeDurableHost, runtime_status: str
) -> None:
    job_id = new_job_id()
    durable.add_instance(job_id, runtime_status, name=ORCHESTRATOR)

    deliver(starter, durable, cancel_message(job_id, "too late"), job_id)

    assert [r.instance_id for r in durable.requests_of("status")] == [job_id]
    assert durable.requests_of("terminate") == []
    assert durable.requests_of("start") == []
    assert durable.instances[job_id].runtime_status == runtime_status


def test_terminate_for_an_unknown_instance_does_nothing(
    starter: func.Function, durable: FakeDurableHost
) -> None:
    job_id = new_job_id()

    deliver(starter, durable, cancel_message(job_id, "never started"), job_id)

    assert [r.instance_id for r in durable.requests_of("status")] == [job_id]
    assert durable.requests_of("terminate") == []
    assert durable.requests_of("start") == []
    assert job_id not in durable.instances
