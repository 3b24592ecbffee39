"""`create_app(settings, store)`: the sidecar's Starlette application."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from liteshift.sidecar.context import Sidecar
from liteshift.sidecar.errors import EXCEPTION_HANDLERS
from liteshift.sidecar.metrics import Metrics
from liteshift.sidecar.middleware.auth import AuthMiddleware
from liteshift.sidecar.middleware.body_limit import BodyLimitMiddleware
from liteshift.sidecar.middleware.errors import ErrorMiddleware
from liteshift.sidecar.openapi import build_openapi
from liteshift.sidecar.promotion import Promoter
from liteshift.sidecar.router import IndexedRouter
from liteshift.sidecar.routes import all_operations
from liteshift.sidecar.routing import Operation, build_routes
from liteshift.sidecar.settings import Settings
from liteshift.sidecar.switchable import SwitchableStore
from liteshift.sidecar.tokens import Tokens, resolve_tokens
from liteshift.store import Store


class SidecarApp(Starlette):
    """Starlette with one error layer (`ErrorMiddleware`) in place of its two: the handler
    registered for `Exception` answers anything else with a 500."""

    def build_middleware_stack(self) -> ASGIApp:
        handlers = dict(self.exception_handlers)
        fallback = handlers.pop(Exception)
        app: ASGIApp = self.router
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return ErrorMiddleware(app, handlers, fallback)


def create_app(
    settings: Settings,
    store: Store,
    *,
    metrics: Metrics | None = None,
    tokens: Tokens | None = None,
    extra_operations: list[Operation] | None = None,
    close_store: bool = True,
) -> Starlette:
    """The sidecar app serving `store`.

    Pass the `metrics` whose `observe` the store was opened with (`open_store(observer=...)`)
    so per-operation metrics flow; without it a fresh `Metrics` exports only the gauges.
    `tokens` defaults to `resolve_tokens(settings)`. `extra_operations` lets a benchmark add a
    route behind the same middleware. The lifespan closes the store on shutdown unless
    `close_store=False`. A SQLite store is served through a `SwitchableStore`, so an online
    promotion (`/admin/promotion`) can swap it for Postgres in-process.
    """
    if store.engine == "sqlite" and not isinstance(store, SwitchableStore):
        store = SwitchableStore(store)
    metrics = metrics or Metrics(settings.datastore, settings.namespace)
    metrics.set_engine(store.engine)
    metrics.set_promotion_state("Promoted" if store.engine == "postgres" else "Idle")
    metrics.watch_store(store.stats)
    sidecar = Sidecar(
        settings=settings, store=store, metrics=metrics, tokens=tokens or resolve_tokens(settings)
    )
    sidecar.promoter = Promoter(sidecar)
    operations = [*all_operations(media_enabled=store.media_enabled), *(extra_operations or [])]
    sidecar.openapi = to_json(build_openapi(operations))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # A running promotion stops (and rolls back) before its store closes.
            if sidecar.promoter is not None:
                await asyncio.to_thread(sidecar.promoter.shutdown)
            if close_store:
                store.close()

    app = SidecarApp(
        middleware=[
            Middleware(AuthMiddleware, tokens=sidecar.tokens),
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # Routes are looked up by their leading path segments, not tried one by one.
    app.router = IndexedRouter(build_routes(operations, sidecar), lifespan=lifespan)
    app.state.sidecar = sidecar
    app.state.operations = operations
    return app
