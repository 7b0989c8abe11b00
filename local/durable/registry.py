"""Find the orchestrators and activities a ``func.FunctionApp`` declares.

We read the same function metadata the Functions host indexes, so whatever
runs locally is exactly what is registered for Azure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from azure.durable_functions.constants import ACTIVITY_TRIGGER, ORCHESTRATION_TRIGGER

from local.durable.replay import OrchestratorHandle


@dataclass(frozen=True)
class ActivityFunction:
    """An activity's user code and the parameter its trigger binds the input to."""

    name: str
    func: Callable[..., Any]
    input_name: str


@dataclass(frozen=True)
class FunctionRegistry:
    orchestrators: dict[str, OrchestratorHandle] = field(default_factory=dict)
    activities: dict[str, ActivityFunction] = field(default_factory=dict)

    @classmethod
    def from_app(cls, app: func.FunctionRegister) -> FunctionRegistry:
        """Index ``app`` (with any blueprints already registered on it).

        ``FunctionApp.get_functions()`` refuses a second call (it remembers the
        names it validated and then reports every one as a duplicate), so we
        clear that memo for our call and put it back, leaving the app as we
        found it for the host or another local runtime.
        """
        memo = app.functions_bindings
        app.functions_bindings = None
        try:
            return cls.from_functions(app.get_functions())
        finally:
            app.functions_bindings = memo

    @classmethod
    def from_functions(cls, functions: Iterable[func.Function]) -> FunctionRegistry:
        registry = cls()
        for function in functions:
            trigger = function.get_trigger()
            if trigger is None:
                continue
            name = function.get_function_name()
            # A binding may rename the orchestration/activity; accept both names.
            alias = getattr(trigger, "orchestration", None)
            alias = alias or getattr(trigger, "activity", None)
            names: set[str] = {n for n in (name, alias) if isinstance(n, str)}
            if trigger.type == ORCHESTRATION_TRIGGER:
                for key in names:
                    registry.orchestrators[key] = function.get_user_function()
            elif trigger.type == ACTIVITY_TRIGGER:
                for key in names:
                    registry.activities[key] = ActivityFunction(
                        key, function.get_user_function(), trigger.name
                    )
        return registry
