"""The throwaway Postgres harness itself: a real server, real databases."""

from __future__ import annotations

import psycopg
import pytest

from liteshift.local.postgres import PostgresServer


def test_each_database_is_fresh_and_isolated(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    try:
        assert first != second
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (id int)")
        with psycopg.connect(second) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)


def test_dropped_database_is_gone(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database()
    postgres_server.drop_database(dsn)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(dsn).close()
