"""The optional Postgres media store (`attachments`, `extractions`), ADR-0020.

Opened only when a media URL is given; otherwise nothing in liteshift connects to Postgres for
media. Its link to `messages` in the primary store is checked by the application; a media write
that fails because the media database is unreachable increments the cross-store write failure
counter (`StoreStats.cross_store_write_failures`, `liteshift_cross_store_write_failures_total`).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from liteshift.store.connect import pg_configure, pg_connect
from liteshift.store.dbapi import Db, PgDb
from liteshift.store.errors import MigrationError, StoreUnavailable
from liteshift.store.migrations import migrate_up
from liteshift.store.urls import DatabaseURL, parse_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from liteshift.store.base import BaseStore


class MediaStore:
    """A psycopg pool and executor for the media tables."""

    def __init__(self, url: str, *, pool_size: int, migrate: bool) -> None:
        parsed = parse_url(url)
        if parsed.engine != "postgres":
            raise StoreUnavailable(parsed.display(), "the media store must be a postgresql:// URL")
        self.target = parsed.display()
        if migrate:
            migrate_up(parsed, "media")
        _check_schema(parsed)
        self._pool = psycopg_pool.ConnectionPool(
            parsed.target,
            min_size=1,
            max_size=pool_size,
            configure=pg_configure,
            kwargs={"connect_timeout": 5},
            open=False,
            timeout=5,  # as the main Postgres engine: a vanished database is a prompt 503
        )
        self._pool.open(wait=True, timeout=10)
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="liteshift-media")

    def dispatch(
        self, store: BaseStore, name: str, kind: str, task: Callable[[Db], Any]
    ) -> Future[Any]:
        return self._executor.submit(self._run, store, name, kind, task, time.monotonic())

    def _run(
        self,
        store: BaseStore,
        name: str,
        kind: str,
        task: Callable[[Db], Any],
        queued: float,
    ) -> Any:
        ok = False
        started = queued
        try:
            with self._pool.connection() as conn:
                started = time.monotonic()
                with conn.transaction():
                    result = task(PgDb(conn))
            ok = True
            return result
        except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
            if kind == "media_write":
                store.count_cross_store_failure()
            text = str(exc).strip().splitlines()
            raise StoreUnavailable(self.target, text[0] if text else type(exc).__name__) from exc
        finally:
            end = time.monotonic()
            store.observe(name, kind, duration=end - queued, wait=started - queued, busy=0, ok=ok)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._pool.close()


def _check_schema(url: DatabaseURL) -> None:
    with pg_connect(url.target) as conn:
        row = conn.execute("SELECT to_regclass('extractions')").fetchone()
    if row is None or row[0] is None:
        raise MigrationError(
            "the media database has no schema; run `liteshift migrate up --media --db URL`"
        )
