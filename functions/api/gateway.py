"""Only API Management may call the app on Azure.

The Consumption tier of API Management cannot sit in a virtual network, and the
Functions host serves the app anonymously, so the Function App's own address answers
anyone who finds it. The gateway adds a shared secret to every request it forwards
(``X-Gateway-Secret``, from a secret named value; see ``infra/modules/apim.bicep``),
and this layer refuses a request without it (403, in the envelope) before any route
runs, /predict included. The OpenAPI document stays open: API Management imports the
API from it. Locally no secret is set and the layer is not installed.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from functions.api.envelope import error_answer
from functions.api.scoring_path import route_path
from shared.errors import Forbidden

HEADER = b"x-gateway-secret"


class GatewayGuard:
    """ASGI layer: HTTP requests must carry ``secret`` in ``X-Gateway-Secret``, except
    on ``open_paths`` (paths as the router matches them)."""

    def __init__(self, app: ASGIApp, secret: str, open_paths: frozenset[str]) -> None:
        if not secret:
            raise ValueError("an empty gateway secret would admit anyone")
        self.app = app
        self._secret = secret.encode()
        self._open = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and route_path(scope) not in self._open:
            supplied = b""
            for name, value in scope["headers"]:
                if name == HEADER:
                    supplied = value
                    break
            if not hmac.compare_digest(supplied, self._secret):
                response = error_answer(
                    Forbidden(
                        "This API is served through API Management; call the "
                        "gateway's address, not the Function App's."
                    )
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
