"""`/healthz` (process up), `/readyz` (store reachable, migrations current), `/metrics`,
`/openapi.json`."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from liteshift.errors import LiteshiftError
from liteshift.sidecar.responses import json_response
from liteshift.sidecar.routing import Call, Operation
from liteshift.sidecar.schemas import ErrorBody, HealthOut, ReadyOut
from liteshift.store.migrations import MigrationRunner
from liteshift.store.urls import parse_url

PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def healthz(call: Call) -> Any:
    return {"status": "ok"}


def pending_migrations(db_url: str) -> list[str]:
    """Labels of migrations that are not applied as shipped (pending, changed or missing)."""
    with MigrationRunner(parse_url(db_url), create=False) as runner:
        return [
            f"{m.version:04d}_{m.name} {m.state}" for m in runner.status() if m.state != "applied"
        ]


async def readyz(call: Call) -> Any:
    loop = asyncio.get_running_loop()
    checks: dict[str, str] = {}
    try:
        await loop.run_in_executor(None, call.store.ping)
        checks["store"] = "ok"
    except LiteshiftError as exc:
        checks["store"] = str(exc)
    try:
        behind = await loop.run_in_executor(None, pending_migrations, call.sidecar.settings.db_url)
        checks["migrations"] = "ok" if not behind else "not current: " + ", ".join(behind)
    except LiteshiftError as exc:
        checks["migrations"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


async def metrics(call: Call) -> Any:
    loop = asyncio.get_running_loop()
    # Reading Postgres' database size is a query: keep it off the event loop.
    body = await loop.run_in_executor(None, call.sidecar.metrics.exposition)
    return Response(body, media_type=PROMETHEUS_TEXT)


async def openapi(call: Call) -> Any:
    return Response(call.sidecar.openapi, media_type="application/json")


OPERATIONS = [
    Operation(
        "GET",
        "/healthz",
        healthz,
        "Liveness: the process serves HTTP",
        "health",
        auth="none",
        response=HealthOut,
    ),
    Operation(
        "GET",
        "/readyz",
        readyz,
        "Readiness: store reachable and migrations current",
        "health",
        auth="none",
        response=ReadyOut,
        errors=(503,),
        extra={"503": ReadyOut},
    ),
    Operation(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics (text exposition format)",
        "health",
        auth="none",
        media_type=PROMETHEUS_TEXT,
    ),
    Operation(
        "GET",
        "/openapi.json",
        openapi,
        "This document (API or admin token)",
        "health",
        auth="any",
        media_type="application/json",
    ),
]

__all__ = ["OPERATIONS", "ErrorBody"]
