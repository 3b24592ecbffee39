"""What the operator's promotion tests share: kopf for real against kmock with promotion
settings in its memo, a real `liteshift serve` process, Secrets pointing at the test's real
Postgres, and readers for status, conditions and Events."""

from __future__ import annotations

import base64
import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import kopf
import psycopg

from liteshift.operator.handlers.promotion import PROMOTION_MEMO_KEY, PromotionSettings
from liteshift.operator.handlers.runtime import MEMO_KEY, Runtime
from liteshift.operator.kube import Kube
from liteshift.store import open_store
from liteshift.store.models import MessageIn
from tests.operator.cluster import NAMESPACE, Cluster, _in_thread, settings_for_tests
from tests.operator.sidecar_process import ADMIN_TOKEN, API_TOKEN

VECTOR_DIMENSION = 4  # as SidecarProcess configures the sidecar
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API = {"Authorization": f"Bearer {API_TOKEN}"}


@contextlib.contextmanager
def operator_with(cluster: Cluster, settings: PromotionSettings) -> Iterator[None]:
    """The liteshift operator (every handler) with these promotion settings in its memo."""

    async def main(ready: threading.Event, stop: threading.Event) -> None:
        runtime = Runtime(
            kube=Kube.from_url(cluster.url),
            drift_interval=1.0,
            retry_delay=0.5,
            connection=kopf.ConnectionInfo(server=cluster.url, default_namespace=NAMESPACE),
        )
        await kopf.operator(
            registry=kopf.get_default_registry(),
            settings=settings_for_tests(),
            standalone=True,
            clusterwide=True,
            memo=kopf.Memo({MEMO_KEY: runtime, PROMOTION_MEMO_KEY: settings}),
            stop_flag=stop,
            ready_flag=ready,
        )

    with _in_thread("kopf", main):
        yield


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tokens_secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"api-token": _b64(API_TOKEN), "admin-token": _b64(ADMIN_TOKEN)},
    }


def dsn_secret(name: str, dsn: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"dsn": _b64(dsn)},
    }


def datastore(name: str, **spec: Any) -> dict[str, Any]:
    """A Datastore using the test's tokens, an external Postgres (Secret `<name>-pg`), no
    scheduled backups (they would only add noise), plus `spec`."""
    base: dict[str, Any] = {
        "auth": {"secretRef": {"name": f"{name}-tokens"}},
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": f"{name}-pg"}}},
        "backup": {"enabled": False},
    }
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {**base, **spec},
    }


def create_datastore(cluster: Cluster, name: str, dsn: str, **spec: Any) -> None:
    cluster.create("Secret", tokens_secret(f"{name}-tokens"))
    cluster.create("Secret", dsn_secret(f"{name}-pg", dsn))
    cluster.create("Datastore", datastore(name, **spec))


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict((cluster.get("Datastore", name) or {}).get("status") or {})


def promotion(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(status(cluster, name).get("promotion") or {})


def condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any]:
    for cond in status(cluster, name).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def events(cluster: Cluster, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.list("Event")
        if e.get("involvedObject", {}).get("name") == name
        and (reason is None or e.get("reason") == reason)
    ]


def annotate(cluster: Cluster, name: str, key: str, value: str) -> None:
    cluster.patch("Datastore", name, {"metadata": {"annotations": {key: value}}})


def seed(db_path: Path, rows: int) -> None:
    """`rows` messages written straight into a SQLite store (group commit keeps it fast)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{db_path}", migrate=True, vector_dimension=VECTOR_DIMENSION)
    try:
        pending: list[Future[Any]] = []
        for i in range(rows):
            message = MessageIn(conversation_id=f"c{i % 7}", role="user", content=f"seed {i}")
            pending.append(store.submit(store.create_message, message))
            if len(pending) >= 2000:
                for future in pending:
                    future.result()
                pending.clear()
        for future in pending:
            future.result()
    finally:
        store.close()


def postgres_ids(dsn: str, table: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {str(row[0]) for row in conn.execute(f"SELECT id FROM {table}").fetchall()}


def postgres_tables(dsn: str) -> set[str]:
    """Tables in the public schema (none: nothing was ever migrated or copied there)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {str(row[0]) for row in rows}


class WriteLoad:
    """Threads of HTTP clients creating messages and events through the sidecar's API for as
    long as the block runs; every acknowledged id and every failed request is recorded."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.stop = threading.Event()
        self.acked: dict[str, list[str]] = {"messages": [], "events": []}
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"load-{n}") for n in range(threads)
        ]

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, timeout=30, headers=API) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                table = "messages" if i % 2 else "events"
                body: dict[str, Any] = (
                    {"conversation_id": f"load{n}", "role": "user", "content": f"{n}-{i}"}
                    if table == "messages"
                    else {"type": "load", "payload": {"n": n, "i": i}}
                )
                try:
                    response = http.post(f"/v1/{table}", json=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{table}: {exc!r}")
                    continue
                with self._lock:
                    if response.status_code == 201:
                        self.acked[table].append(str(response.json()["id"]))
                    else:
                        self.failures.append(f"{table}: {response.status_code} {response.text}")

    def total(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.acked.values())

    def wait_for_writes(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        start = self.total()
        while self.total() < start + count:
            assert time.monotonic() < deadline, f"the load wrote {self.total() - start} of {count}"
            time.sleep(0.05)
