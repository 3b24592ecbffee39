"""The sidecar's one error layer: exceptions become the API's JSON errors.

Starlette puts two layers around every request for this, `ServerErrorMiddleware` (outermost:
anything unhandled becomes a 500) and `ExceptionMiddleware` (innermost: registered exception
types become their handler's response), each wrapping `send` to learn whether the response
started, and the second building a `Request` for every request in case one fails. Here one
layer does both, and builds the `Request` only for a request that failed: ~3 µs of a no-op
request and ~5 µs of a point read in-process (docs/benchmarks.md).

Behaviour is Starlette's: a handler is looked up along the exception's MRO; an exception with
no handler is answered by the fallback handler (a 500) and raised again, so the server logs its
traceback, which never reaches the response; once the response has started nothing more is
sent, and the exception is raised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]


class ErrorMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        handlers: Mapping[type[Exception], ErrorHandler],
        fallback: ErrorHandler,
    ) -> None:
        self.app = app
        self.handlers = dict(handlers)
        self.fallback = fallback

    def handler_for(self, exc: Exception) -> ErrorHandler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise  # half a response is out: nothing sensible can follow it
            handler = self.handler_for(exc)
            request = Request(scope, receive)
            if handler is None:
                await (await self.fallback(request, exc))(scope, receive, send)
                raise  # for the server's log (the client got the 500 above)
            response = await handler(request, exc)
            await response(scope, receive, send)
            # A reused exception instance would otherwise grow its traceback per request.
            exc.__traceback__ = None
