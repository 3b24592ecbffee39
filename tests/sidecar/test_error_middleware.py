"""`ErrorMiddleware` (one layer) answers as Starlette's two error layers do, with the sidecar's
handlers: the same messages sent, the same exceptions raised to the server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from liteshift.sidecar.app import SidecarApp
from liteshift.sidecar.errors import EXCEPTION_HANDLERS, RequestError
from liteshift.store.errors import NotFound, StoreUnavailable
from tests.sidecar.asgi_call import call


class _Boom(RuntimeError):
    pass


async def ok(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def not_found(request: Request) -> Response:
    raise NotFound("message", "abc")


async def unavailable(request: Request) -> Response:
    raise StoreUnavailable("sqlite file x", "closed")


async def bad_request(request: Request) -> Response:
    raise RequestError(422, "validation_error", [{"loc": ["body"], "msg": "m", "type": "t"}])


async def http_error(request: Request) -> Response:
    raise HTTPException(409, "taken", headers={"X-Why": "because"})


async def crash(request: Request) -> Response:
    raise _Boom("secret detail that must not reach the client")


class _CrashAfterStart:
    """A raw ASGI endpoint (a class: Starlette would call a function with a Request)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise _Boom("after the start")


ROUTES = [
    Route("/ok", ok),
    Route("/not-found", not_found),
    Route("/unavailable", unavailable),
    Route("/bad", bad_request),
    Route("/http", http_error),
    Route("/crash", crash),
    Route("/after-start", _CrashAfterStart()),
]


async def _call(app: Any, method: str, path: str) -> dict[str, Any]:
    outcome = await call(app, method, path)
    return {"sent": outcome.sent, "raised": outcome.raised}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ok"),
        ("GET", "/not-found"),
        ("GET", "/unavailable"),
        ("GET", "/bad"),
        ("GET", "/http"),
        ("GET", "/crash"),
        ("GET", "/after-start"),
        ("GET", "/no-such-route"),
        ("POST", "/ok"),
    ],
)
def test_answers_as_starlettes_two_layers_do(method: str, path: str) -> None:
    async def compare() -> None:
        theirs = Starlette(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
        ours = SidecarApp(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
        assert await _call(ours, method, path) == await _call(theirs, method, path)

    asyncio.run(compare())


def test_an_unhandled_exception_is_a_json_500_and_reaches_the_server_without_its_text() -> None:
    app = SidecarApp(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    result = asyncio.run(_call(app, "GET", "/crash"))
    start, body = result["sent"]
    assert start["status"] == 500
    assert b'"error":"internal"' in body["body"]
    assert b"secret" not in body["body"]
    assert result["raised"] == ("_Boom", "secret detail that must not reach the client")


def test_nothing_is_sent_after_a_started_response() -> None:
    app = SidecarApp(routes=ROUTES, exception_handlers=EXCEPTION_HANDLERS)  # type: ignore[arg-type]
    result = asyncio.run(_call(app, "GET", "/after-start"))
    assert [m["type"] for m in result["sent"]] == ["http.response.start"]
    assert result["raised"] == ("_Boom", "after the start")
