"""Request body limit: 413 above `max_bytes`, with or without a Content-Length.

The body is read here, counted while it arrives (a chunked upload is refused as soon as it
crosses the limit, never buffered whole), and replayed to the app as one message. It is also
left in the scope under `BODY_SCOPE_KEY`, so the endpoint takes it from there rather than
through Starlette's streaming `Request.body()` (an async generator per request).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from liteshift.sidecar.responses import error_response

#: The whole request body (bytes), once this middleware has read and counted it.
BODY_SCOPE_KEY = "liteshift.body"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: int | None = None
        has_body = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                has_body = True
                try:
                    declared = int(value)
                except ValueError:
                    await error_response(400, "bad_request", "invalid Content-Length")(
                        scope, receive, send
                    )
                    return
            elif name == b"transfer-encoding":
                has_body = True
        if not has_body:
            # No body announced (GET): skip the buffering, the read path stays cheap.
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope[BODY_SCOPE_KEY] = body
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"request body is over {self.max_bytes} bytes"
        )
        await response(scope, receive, send)
