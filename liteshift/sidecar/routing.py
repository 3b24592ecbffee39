"""The route table: each `Operation` declares method, path, auth, models and handler.

Starlette routes and `/openapi.json` are both built from the same table, so the document cannot
drift from what is mounted. The endpoint wrapper parses the query string and the JSON body with
the operation's pydantic models (400 malformed JSON, 422 wrong types) before the handler runs.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from liteshift.sidecar.context import Sidecar
from liteshift.sidecar.errors import RequestError
from liteshift.sidecar.ids import new_id
from liteshift.sidecar.middleware.body_limit import BODY_SCOPE_KEY
from liteshift.sidecar.responses import json_response
from liteshift.store import Store

R = TypeVar("R")
Auth = Literal["api", "admin", "any", "none"]
Handler = Callable[["Call"], Awaitable[Any]]

_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)}")


@dataclass
class Call:
    """What a handler gets: the parsed request and the sidecar it runs in."""

    request: Request
    sidecar: Sidecar
    params: dict[str, str]
    query: Any
    body: Any

    @property
    def store(self) -> Store:
        return self.sidecar.store

    async def run(self, method: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run a store method without blocking the event loop: the store's reader pool or
        group-commit writer does the work and the loop only awaits the future (no thread per
        request). A future that is already done (a cheap read the SQLite store ran inline,
        within its time budget, or a validation error) is read directly, without the
        cross-thread wake-up `asyncio.wrap_future` costs."""
        future = self.sidecar.store.submit(method, *args, **kwargs)
        if not future.done():
            # A plain waiter woken from the store's thread: half the cost of
            # `asyncio.wrap_future`, which copies the outcome through a second future.
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            future.add_done_callback(lambda _: loop.call_soon_threadsafe(_wake, waiter))
            try:
                await waiter
            except asyncio.CancelledError:
                future.cancel()  # a write still queued is dropped, as wrap_future would
                raise
        return future.result()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():  # cancelled meanwhile
        waiter.set_result(None)


@dataclass(frozen=True)
class Operation:
    """One route: what it accepts and returns (for validation and for the OpenAPI document)."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Auth = "api"
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    #: A pydantic model describing the 2xx body; None for no JSON body.
    response: type[pydantic.BaseModel] | None = None
    status: int = 200
    #: Error statuses this route can answer besides auth/413/5xx (documented in OpenAPI).
    errors: tuple[int, ...] = ()
    #: Non-JSON success media type (e.g. the Prometheus exposition format).
    media_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    @property
    def operation_id(self) -> str:
        return getattr(self.handler, "__name__", f"{self.method}_{self.path}")


def with_id(body: pydantic.BaseModel) -> dict[str, Any]:
    """A create body's fields, with a fresh UUID4 `id` when the client sent none."""
    fields = body.model_dump()
    if fields.get("id") is None:
        fields["id"] = new_id()
    return fields


def _validation_detail(exc: pydantic.ValidationError, where: str) -> list[dict[str, Any]]:
    return [
        {"loc": [where, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def _parse_body(model: type[pydantic.BaseModel], raw: bytes) -> pydantic.BaseModel:
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise RequestError(400, "bad_json", "the request body is not valid JSON") from None
        raise RequestError(422, "validation_error", _validation_detail(exc, "body")) from None


def _parse_query(model: type[pydantic.BaseModel], request: Request) -> pydantic.BaseModel:
    try:
        return model.model_validate(dict(request.query_params))
    except pydantic.ValidationError as exc:
        raise RequestError(422, "validation_error", _validation_detail(exc, "query")) from None


class Endpoint:
    """The ASGI app running `op`: parse, call the handler, serialize.

    Mounted as a plain ASGI app, not as a `request -> response` function: Starlette would wrap
    each call in its own exception handling, which repeats what the app's error layer
    (`ErrorMiddleware`) does with the same handlers (an error raised here reaches that one)."""

    __slots__ = ("__name__", "body_model", "handler", "query_model", "sidecar", "status")

    def __init__(self, op: Operation, sidecar: Sidecar) -> None:
        self.body_model, self.query_model = op.body, op.query
        self.status, self.handler, self.sidecar = op.status, op.handler, sidecar
        self.__name__ = op.operation_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.run(Request(scope, receive, send))
        await response(scope, receive, send)

    async def run(self, request: Request) -> Response:
        query = None
        if self.query_model is not None:
            query = _parse_query(self.query_model, request)
        body = None
        if self.body_model is not None:
            raw = request.scope.get(BODY_SCOPE_KEY)
            if raw is None:  # not through BodyLimitMiddleware (an app without it)
                raw = await request.body()
            body = _parse_body(self.body_model, raw)
        result = await self.handler(Call(request, self.sidecar, request.path_params, query, body))
        if isinstance(result, Response):
            return result
        if self.status == 204:
            return Response(status_code=204)
        return json_response(result, self.status)


def build_routes(operations: list[Operation], sidecar: Sidecar) -> list[Route]:
    """One Starlette `Route` per operation (same path, several methods: several routes)."""
    return [
        Route(op.path, Endpoint(op, sidecar), methods=[op.method], name=op.operation_id)
        for op in operations
    ]
