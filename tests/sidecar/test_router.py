"""`IndexedRouter` answers every request exactly as Starlette's linear `Router` does.

The oracle is Starlette's own `Router` over the same routes: for each request both give the
same status, headers, body and route."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from liteshift.sidecar.router import IndexedRouter
from liteshift.sidecar.routes import all_operations
from tests.sidecar.asgi_call import call


def _endpoint(label: str) -> Any:
    async def answer(request: Request) -> Response:
        return PlainTextResponse(f"{label} {sorted(request.path_params.items())}")

    return answer


def _sidecar_routes() -> list[BaseRoute]:
    """The sidecar's own table (media on: every route), each answering with its label."""
    return [
        Route(op.path, _endpoint(f"{op.method} {op.path}"), methods=[op.method])
        for op in all_operations(media_enabled=True)
    ]


def _awkward_routes() -> list[BaseRoute]:
    """Routes the index cannot bucket, and shadowing between bucketed ones."""
    inner = Router([Route("/deep/{x}", _endpoint("mounted deep"))])
    return [
        Route("/a/b", _endpoint("GET /a/b"), methods=["GET"]),
        Route("/{first}/b", _endpoint("param first"), methods=["GET", "POST"]),
        Route("/a/b", _endpoint("POST /a/b (after the param route)"), methods=["POST"]),
        Route("/a/{second}", _endpoint("param second")),
        Route("/files/{rest:path}", _endpoint("path convertor")),
        Mount("/mnt", app=inner),
        Route("/a/b/{n:int}", _endpoint("int convertor")),
        Route("/a/b/{s}", _endpoint("str after int")),
        Route("/", _endpoint("root")),
    ]


REQUESTS = [
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/v1/messages"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/messages/abc"),
    ("DELETE", "/v1/messages/abc"),
    ("GET", "/v1/messages/"),
    ("GET", "/v1/messages/abc/"),
    ("GET", "/v1/messages/abc/extra"),
    ("POST", "/v1/proposals/p1/decision"),
    ("GET", "/v1/proposals/p1/decision"),
    ("POST", "/v1/events"),
    ("GET", "/v1/events/e1"),
    ("POST", "/v1/embeddings/search"),
    ("GET", "/v1/embeddings/search"),
    ("DELETE", "/v1/embeddings/e1"),
    ("PUT", "/v1/cursors/c1"),
    ("GET", "/v1/cursors/c1"),
    ("POST", "/admin/promotion/abort"),
    ("GET", "/admin/promotion"),
    ("GET", "/admin/promotion/"),
    ("GET", "/v1"),
    ("GET", "/v1/"),
    ("GET", "/nope"),
    ("GET", "/"),
    ("GET", ""),
    ("GET", "//"),
    ("GET", "/v1//messages"),
    ("GET", "/a/b"),
    ("POST", "/a/b"),
    ("PUT", "/a/b"),
    ("GET", "/a/c"),
    ("GET", "/z/b"),
    ("GET", "/a/b/7"),
    ("GET", "/a/b/seven"),
    ("GET", "/files/x/y/z"),
    ("GET", "/files/"),
    ("GET", "/mnt/deep/1"),
    ("GET", "/mnt/deep"),
]


async def _answer(router: Router, method: str, path: str, root_path: str) -> dict[str, Any]:
    outcome = await call(router, method, path, root_path)
    if outcome.raised is not None:  # Starlette raises HTTPException for 404/405 without handlers
        return {"raised": outcome.raised}
    route = outcome.scope.get("route")
    return {
        "messages": outcome.sent,
        "route": getattr(route, "path", None),
        "params": outcome.scope.get("path_params"),
    }


@pytest.mark.parametrize("table", [_sidecar_routes, _awkward_routes])
@pytest.mark.parametrize("root_path", ["", "/prefix"])
def test_every_request_is_answered_as_the_linear_router_answers_it(
    table: Any, root_path: str
) -> None:
    async def compare() -> None:
        linear = Router(table())
        indexed = IndexedRouter(table())
        for method, path in REQUESTS:
            expected = await _answer(linear, method, path, root_path)
            got = await _answer(indexed, method, path, root_path)
            assert got == expected, (method, root_path + path)

    asyncio.run(compare())


def test_a_route_late_in_the_table_is_asked_alone() -> None:
    routes = _sidecar_routes()
    router = IndexedRouter(routes)
    late = router.candidates("/admin/promotion/abort")
    assert [getattr(r, "path", None) for r in late] == ["/admin/promotion/abort"]
    messages = router.candidates("/v1/messages/abc")
    assert [getattr(r, "path", None) for r in messages] == ["/v1/messages/{id}"]


def test_unindexable_routes_are_asked_in_their_table_position() -> None:
    router = IndexedRouter(_awkward_routes())
    assert [getattr(r, "path", None) for r in router.candidates("/a/b")] == [
        "/a/b",
        "/{first}/b",
        "/a/b",
        "/a/{second}",
        "/files/{rest:path}",
        "/mnt",
    ]
