"""Local Durable Functions runtime: the app's orchestrators, replayed in-process.

Typical use::

    engine = LocalDurableEngine(app, InMemoryHistoryStore())
    engine.resume_unfinished()
    instance_id = engine.start_new("train_model", input={"job_id": job_id})
    status = engine.wait_for_completion(instance_id, timeout=60)

Activities check :func:`is_cancel_requested` to stop early on terminate.
"""

from local.durable.cancellation import (
    ActivityCancelledError,
    ActivityInvocation,
    is_cancel_requested,
    raise_if_cancelled,
)
from local.durable.engine import LocalDurableEngine
from local.durable.registry import ActivityFunction, FunctionRegistry
from local.durable.store import (
    HistoryStore,
    InMemoryHistoryStore,
    InstanceExistsError,
    InstanceRecord,
)

__all__ = [
    "ActivityCancelledError",
    "ActivityFunction",
    "ActivityInvocation",
    "FunctionRegistry",
    "HistoryStore",
    "InMemoryHistoryStore",
    "InstanceExistsError",
    "InstanceRecord",
    "LocalDurableEngine",
    "is_cancel_requested",
    "raise_if_cancelled",
]
