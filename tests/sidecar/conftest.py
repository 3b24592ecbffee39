"""Sidecar fixtures: the real app over a real store, on both engines, over real HTTP.

The app runs under uvicorn (httptools) on a loopback port in a thread; `client` is an httpx
client against it. (Starlette's TestClient is not used: on this Starlette it warns about httpx.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from liteshift.cli.serve import SERVER_OPTIONS
from liteshift.local.ports import free_port
from liteshift.sidecar import Settings, create_app
from liteshift.sidecar.metrics import Metrics
from liteshift.store import Store, open_store

API_TOKEN = "api-token-for-tests-0123456789"
ADMIN_TOKEN = "admin-token-for-tests-9876543210"
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DIMENSION = 4


@dataclass
class Sidecar:
    app: Starlette
    store: Store
    metrics: Metrics
    settings: Settings


def make_sidecar(
    db_url: str, tmp_path: Path, *, media_url: str | None = None, **settings: object
) -> Sidecar:
    # Backups (POST /admin/backups) land in the test's tmp dir, never in ./liteshift-data.
    settings.setdefault("backup_dir", tmp_path / "backups")
    config = Settings(
        db_url=db_url,
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        token_dir=tmp_path / "tokens",
        media_enabled=media_url is not None,
        media_db_url=media_url,
        datastore="ds-test",
        namespace="ns-test",
        vector_dimension=DIMENSION,
        **settings,  # type: ignore[arg-type]
    )
    metrics = Metrics(config.datastore, config.namespace)
    store = open_store(
        db_url,
        media_url=media_url,
        migrate=True,
        vector_dimension=DIMENSION,
        observer=metrics.observe,
    )
    return Sidecar(create_app(config, store, metrics=metrics), store, metrics, config)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sidecar.db'}"
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
def sidecar(db_url: str, tmp_path: Path) -> Sidecar:
    return make_sidecar(db_url, tmp_path)


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_in_thread(app: Starlette) -> LiveServer:
    """Run `app` under uvicorn (the protocol `liteshift serve` runs: httptools, one write per
    response; asyncio loop) on a free loopback port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=SERVER_OPTIONS["http"],  # type: ignore[arg-type]  # the protocol `liteshift serve` runs
        log_level="warning",
        access_log=False,
        backlog=512,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


@pytest.fixture
def live_server(sidecar: Sidecar) -> Iterator[LiveServer]:
    live = serve_in_thread(sidecar.app)
    try:
        yield live
    finally:
        live.stop()


@contextmanager
def running(sidecar: Sidecar) -> Iterator[httpx.Client]:
    """Serve `sidecar` under uvicorn; yield an httpx client for it; stop (closing the store)."""
    live = serve_in_thread(sidecar.app)
    try:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            yield http
    finally:
        live.stop()


@pytest.fixture
def client(sidecar: Sidecar) -> Iterator[httpx.Client]:
    with running(sidecar) as http:
        yield http
