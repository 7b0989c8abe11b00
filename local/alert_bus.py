"""The local runtime's alert bus: the in-process bus delivers each new alert's message
to the app's Service Bus consumer functions (``functions/bus``), as the Functions host
does on Azure, each message built as the Python worker builds it."""

from __future__ import annotations

import json
from collections.abc import Callable

import azure.functions as func
from azure.functions.meta import Datum
from azure.functions.servicebus import ServiceBusMessageInConverter

from shared.adapters.bus.in_process import BusMessage, InProcessAlertBus


def functions_message(message: BusMessage) -> func.ServiceBusMessage:
    """The ``func.ServiceBusMessage`` the worker would hand a topic trigger."""
    decoded = ServiceBusMessageInConverter.decode(
        Datum(message.body.decode(), "string"),
        trigger_metadata={
            "MessageId": Datum(message.message_id, "string"),
            "ContentType": Datum("application/json", "string"),
            "Label": Datum(message.subject, "string"),
            "DeliveryCount": Datum(message.delivery_count, "int"),
            "UserProperties": Datum(json.dumps(message.application_properties), "json"),
            "ApplicationProperties": Datum(
                json.dumps(message.application_properties), "json"
            ),
        },
    )
    if not isinstance(decoded, func.ServiceBusMessage):
        raise TypeError("the converter did not build a ServiceBusMessage")
    return decoded


def _adapt(
    consumer: Callable[[func.ServiceBusMessage], None],
) -> Callable[[BusMessage], None]:
    return lambda message: consumer(functions_message(message))


def topic_consumers(
    app: func.FunctionRegister, topic: str
) -> dict[str, Callable[[func.ServiceBusMessage], None]]:
    """The Service Bus topic triggers ``app`` declares on ``topic``, by subscription
    (``get_functions()`` refuses a second call: its memo is cleared for this one)."""
    memo = app.functions_bindings
    app.functions_bindings = None
    try:
        functions = app.get_functions()
    finally:
        app.functions_bindings = memo
    found = {}
    for function in functions:
        trigger = function.get_trigger()
        if trigger is None or trigger.type != "serviceBusTrigger":
            continue
        if getattr(trigger, "topic_name", None) == topic:
            subscription = getattr(trigger, "subscription_name", "")
            found[str(subscription)] = function.get_user_function()
    return found


def attach_consumers(
    app: func.FunctionRegister, bus: InProcessAlertBus, topic: str
) -> list[str]:
    """Subscribe the app's consumer functions of the topic; their subscriptions."""
    consumers = topic_consumers(app, topic)
    for name, consumer in consumers.items():
        bus.subscribe(name, _adapt(consumer))
    return sorted(consumers)
