"""Shared fixtures: a real throwaway Postgres server for the whole run.

`LITESHIFT_TEST_POSTGRES_DSN` points the suite at an existing server instead (each run still
gets its own databases there). A missing Postgres is an error, never a skip: the store tests
promise both engines.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from liteshift.local.postgres import (
    PostgresServer,
    create_database,
    drop_database,
    start_postgres,
)


@dataclass
class ExternalPostgres:
    """Databases on a server someone else runs (LITESHIFT_TEST_POSTGRES_DSN)."""

    admin_dsn: str

    def create_database(self, prefix: str = "liteshift_test") -> str:
        return create_database(self.admin_dsn, prefix)

    def drop_database(self, dsn: str) -> None:
        drop_database(self.admin_dsn, dsn)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer | ExternalPostgres]:
    external = os.environ.get("LITESHIFT_TEST_POSTGRES_DSN")
    if external:
        yield ExternalPostgres(external)
        return
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer | ExternalPostgres) -> Iterator[str]:
    """A fresh, empty database for one test."""
    dsn = postgres_server.create_database()
    try:
        yield dsn
    finally:
        postgres_server.drop_database(dsn)
