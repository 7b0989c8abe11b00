"""Service Bus-triggered consumers of the ``alerts`` topic, one per subscription.

Registered on the app by ``function_app.py``; the local runtime's in-process bus
delivers the same messages to the same functions (``local/alert_bus.py``)."""

from functions.bus.alerts import bp

__all__ = ["bp"]
