"""Bearer-token auth: the API token for `/v1/*`, the admin token for `/admin/*`.

401 (with `WWW-Authenticate`) when credentials are missing, malformed or unknown; 403 when a
valid token of the other kind is presented. `/openapi.json` accepts either token; health and
metrics are open. Comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from liteshift.sidecar.responses import error_response
from liteshift.sidecar.tokens import Tokens

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="liteshift"'}


class AuthMiddleware:
    def __init__(self, app: ASGIApp, tokens: Tokens) -> None:
        self.app = app
        self.api = tokens.api.encode()
        self.admin = tokens.admin.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/v1/") or path == "/v1":
            wanted = "api"
        elif path.startswith("/admin/") or path == "/admin":
            wanted = "admin"
        elif path == "/openapi.json":
            wanted = "any"
        else:
            await self.app(scope, receive, send)
            return
        presented = _bearer(scope)
        if presented is None:
            response = error_response(
                401, "unauthorized", "a bearer token is required", headers=_CHALLENGE
            )
            await response(scope, receive, send)
            return
        # Both comparisons always run: timing does not tell which token kind was close.
        is_api = hmac.compare_digest(presented, self.api)
        is_admin = hmac.compare_digest(presented, self.admin)
        if (wanted == "api" and is_api) or (wanted == "admin" and is_admin):
            await self.app(scope, receive, send)
            return
        if wanted == "any" and (is_api or is_admin):
            await self.app(scope, receive, send)
            return
        if is_api or is_admin:
            other = "the admin token" if wanted == "admin" else "the API token"
            response = error_response(403, "forbidden", f"this route needs {other}")
        else:
            response = error_response(
                401, "unauthorized", "invalid bearer token", headers=_CHALLENGE
            )
        await response(scope, receive, send)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            if scheme.lower() != b"bearer" or not token:
                return None
            return bytes(token)
    return None
