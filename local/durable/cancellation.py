"""Cooperative cancellation for activities run by the local engine.

An activity's signature is fixed by Azure (it receives only its input), so the
engine publishes the running invocation through a context variable. Long
activities call :func:`is_cancel_requested` (or :func:`raise_if_cancelled`)
between steps. Under the real Functions host nothing sets the variable, so
both report "not cancelled" and the activity runs unchanged.

This module imports nothing from the engine so activity code can use it freely.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass


class ActivityCancelledError(Exception):
    """Raised by :func:`raise_if_cancelled` once the orchestration was terminated."""


@dataclass(frozen=True)
class ActivityInvocation:
    """The activity call the current thread is running for the local engine."""

    instance_id: str
    task_id: int
    name: str
    cancel_event: threading.Event

    def is_cancel_requested(self) -> bool:
        return self.cancel_event.is_set()


current_invocation: ContextVar[ActivityInvocation | None] = ContextVar(
    "durable_activity_invocation", default=None
)


def is_cancel_requested() -> bool:
    """True once the orchestration running this activity was asked to terminate."""
    invocation = current_invocation.get()
    return invocation is not None and invocation.is_cancel_requested()


def raise_if_cancelled() -> None:
    invocation = current_invocation.get()
    if invocation is not None and invocation.is_cancel_requested():
        raise ActivityCancelledError(
            f"orchestration {invocation.instance_id} was terminated; "
            f"activity {invocation.name} stopped"
        )
