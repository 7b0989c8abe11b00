"""Timer-triggered functions: the scheduled drift audits and the feature log's export.

Registered on the app by ``function_app.py``; the local runtime runs the same functions
on the same schedules (``local/scheduler.py``)."""

from functions.timers.scheduled import blueprint

__all__ = ["blueprint"]
