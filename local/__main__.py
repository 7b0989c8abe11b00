"""The local runtime: ``python -m local`` serves the same app the Functions host would,
at http://localhost:7071/api/v1 (PORT overrides), after bringing the schema up to date."""

from __future__ import annotations

import argparse
import logging
import os

import uvicorn

from shared.config import get_settings
from shared.logging_setup import configure_logging

log = logging.getLogger("shadow_hubble.local")


def main() -> None:
    parser = argparse.ArgumentParser(description="Run Shadow Hubble locally")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7071")))
    args = parser.parse_args()

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    if settings.run_migrations:
        from shared.db.migrate import upgrade

        upgrade(settings.resolved_database_url)

    from function_app import asgi_app
    from local.runtime import LocalRuntime
    from shared.bootstrap import get_context

    runtime = LocalRuntime(get_context())
    runtime.start()

    log.info(
        "Shadow Hubble on http://%s:%s/api/v1 (docs: /api/v1/docs), backend=%s",
        args.host,
        args.port,
        settings.backend,
    )
    try:
        uvicorn.run(
            asgi_app, host=args.host, port=args.port, log_config=None, access_log=False
        )
    finally:
        runtime.stop()


if __name__ == "__main__":
    main()
