"""Azure Functions entry point (programming model v2) and the composition root.

Builds the process's container from the settings (on first use: the Functions host
indexes this module at cold start, so it imports only what declaring the functions
needs, no pandas, scikit-learn, SQLAlchemy or SDKs) and registers the HTTP app, the
Durable blueprints, the timer functions (on schedules from the settings) and (later)
Service Bus consumers. The v1 HTTP API is one
ASGI app behind an HTTP trigger (route ``{*route}`` under the ``api`` prefix).
"""

from __future__ import annotations

import azure.functions as func

from functions import bus, timers
from functions.api.app import create_app, create_asgi_app
from orchestrations import blueprints
from shared.config import get_settings
from shared.container import build_container, install
from shared.logging_setup import configure_logging

_settings = get_settings()
configure_logging(_settings.log_level, _settings.log_json)
install(lambda: build_container(_settings))

fastapi_app = create_app()
asgi_app = create_asgi_app(fastapi_app)
app = func.AsgiFunctionApp(app=asgi_app, http_auth_level=func.AuthLevel.ANONYMOUS)

for _blueprint in blueprints():
    app.register_functions(_blueprint)
app.register_functions(timers.blueprint(_settings))
app.register_functions(bus.bp)
