"""`/admin/*`: operator-facing routes behind the admin token.

Add an admin feature as its own module with an `OPERATIONS` list (paths under `/admin/`,
`auth="admin"`) and list it in `liteshift.sidecar.routes.all_operations`; the auth middleware
and the OpenAPI document pick it up from there.
"""

from __future__ import annotations

import asyncio
from typing import Any

from liteshift.errors import LiteshiftError
from liteshift.sidecar.routing import Call, Operation
from liteshift.sidecar.schemas import StatusOut
from liteshift.store.migrations import MigrationRunner
from liteshift.store.urls import parse_url


def migration_states(db_url: str) -> list[dict[str, Any]]:
    with MigrationRunner(parse_url(db_url), create=False) as runner:
        return [{"version": m.version, "name": m.name, "state": m.state} for m in runner.status()]


async def status(call: Call) -> Any:
    sidecar = call.sidecar
    loop = asyncio.get_running_loop()
    stats = await loop.run_in_executor(None, sidecar.store.stats)
    try:
        migrations = await loop.run_in_executor(None, migration_states, sidecar.settings.db_url)
    except LiteshiftError:
        migrations = []
    return {
        "datastore": sidecar.settings.datastore,
        "namespace": sidecar.settings.namespace,
        "engine": sidecar.store.engine,
        "media_enabled": sidecar.store.media_enabled,
        "database_size_bytes": stats.database_size_bytes,
        "wal_size_bytes": stats.wal_size_bytes,
        "cross_store_write_failures": stats.cross_store_write_failures,
        "migrations": migrations,
    }


OPERATIONS = [
    Operation(
        "GET",
        "/admin/status",
        status,
        "Engine, sizes and migration states",
        "admin",
        auth="admin",
        response=StatusOut,
    ),
]
