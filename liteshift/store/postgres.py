"""The Postgres engine (psycopg 3 + psycopg_pool): every operation is one transaction on a
pooled connection, run on the engine's executor so async callers never block a thread.

Embedding search is an exact L2 scan in SQL (`ExactIndex`): pgvector is not used yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import psycopg_pool

from liteshift.store.base import BaseStore, Kind, pg_error
from liteshift.store.connect import pg_configure, pg_connect
from liteshift.store.dbapi import Db, PgDb
from liteshift.store.errors import MigrationError, StoreUnavailable
from liteshift.store.media import MediaStore
from liteshift.store.models import OpSample
from liteshift.store.urls import redact
from liteshift.store.vector_index import ExactIndex, VectorIndex


class PostgresStore(BaseStore):
    """`Store` over one Postgres database (see module docstring)."""

    engine = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        vector_dimension: int = 384,
        pool_size: int = 8,
        pool_timeout: float = 5.0,
        observer: Callable[[OpSample], None] | None = None,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(vector_dimension=vector_dimension, observer=observer, media=media)
        self.target = redact(dsn)
        self._index: VectorIndex = ExactIndex()
        with pg_connect(dsn) as conn:  # a clear error for a bad or unreachable server first
            row = conn.execute("SELECT to_regclass('embeddings')").fetchone()
        if row is None or row[0] is None:
            raise MigrationError(
                f"{self.target} has no liteshift schema; run `liteshift migrate up --db URL` "
                "or open the store with migrate=True"
            )
        self._pool = psycopg_pool.ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            configure=pg_configure,
            kwargs={"connect_timeout": 5},
            open=False,
            # How long an operation waits for a connection before it is StoreUnavailable (a
            # 503 in the sidecar): a vanished database must not hold requests for long.
            timeout=pool_timeout,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailable(self.target, "the connection pool did not open") from exc
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="liteshift-pg")
        self._closed = False

    def _dispatch(self, name: str, kind: Kind, task: Callable[[Db], Any]) -> Future[Any]:
        try:
            return self._executor.submit(self._run, name, kind, task, time.monotonic())
        except RuntimeError:
            closed: Future[Any] = Future()
            closed.set_exception(StoreUnavailable(self.target, "store closed"))
            return closed

    def _run(self, name: str, kind: Kind, task: Callable[[Db], Any], queued: float) -> Any:
        started = queued
        ok = False
        try:
            with self._pool.connection() as conn:
                started = time.monotonic()
                with conn.transaction():
                    result = task(PgDb(conn))
            ok = True
            return result
        except psycopg.OperationalError as exc:
            raise pg_error(self.target, exc) from exc
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailable(self.target, "no database connection available") from exc
        finally:
            end = time.monotonic()
            self.observe(name, kind, duration=end - queued, wait=started - queued, busy=0, ok=ok)

    def close(self) -> None:
        """Finish running operations, then close the pool; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._pool.close()
        if self._media is not None:
            self._media.close()

    def ping(self) -> None:
        """`SELECT 1` on a pooled connection; raises StoreUnavailable."""
        try:
            with self._pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise pg_error(self.target, exc) from exc
        except psycopg_pool.PoolTimeout as exc:
            raise StoreUnavailable(self.target, "no database connection available") from exc

    def _sizes(self) -> tuple[int, int]:
        with self._pool.connection() as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return (int(row[0]) if row else 0), 0
