"""Fixtures for the store tests: every engine-level test runs on `sqlite` and `postgres`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from liteshift.store import Store, open_store

#: Small vectors keep the tests fast; the dimension is a store option like any other.
DIM = 8


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of `engine`: a SQLite file, or a fresh Postgres database."""
    if engine == "sqlite":
        return f"sqlite://{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_dsn"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store on the parametrized engine."""
    opened = open_store(store_url, migrate=True, vector_dimension=DIM)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One store per engine for a whole module, for tests that only read or are refused."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path_factory.mktemp('shared')}/store.db"
        dsn = None
    else:
        server = request.getfixturevalue("postgres_server")
        url = dsn = server.create_database()
    opened = open_store(url, migrate=True, vector_dimension=DIM)
    try:
        yield opened
    finally:
        opened.close()
        if dsn is not None:
            request.getfixturevalue("postgres_server").drop_database(dsn)
