"""What every test of a promotion under traffic needs, whichever layer it drives: a SQLite
store seeded with messages, an HTTP write load on a sidecar that records every acknowledged
id and every failed request, and polling of the sidecar's `/admin/promotion` document.

The sidecar tests (in-process sidecar), the operator's promotion tests and the end-to-end
tests (`liteshift serve` processes) all use these, each with its own tokens."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import psycopg

from liteshift.sidecar.schemas import PromotionOut
from liteshift.store import open_store
from liteshift.store.models import MessageIn

# Both test sidecars (tests/sidecar/conftest.py and SidecarProcess) are configured with it.
VECTOR_DIMENSION = 4
TERMINAL = ("Promoted", "RolledBack")
SEED_BATCH = 2000  # futures in flight while seeding: group commit without unbounded memory


def seed(db_path: Path, rows: int, *, pad_to: int = 0) -> None:
    """`rows` messages written straight into the SQLite store at `db_path` (created and
    migrated if new; group commit keeps it fast), contents padded with "x" to `pad_to`."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{db_path}", migrate=True, vector_dimension=VECTOR_DIMENSION)
    try:
        pending: list[Future[Any]] = []
        for i in range(rows):
            content = f"seed {i}".ljust(pad_to, "x")
            message = MessageIn(conversation_id=f"c{i % 7}", role="user", content=content)
            pending.append(store.submit(store.create_message, message))
            if len(pending) >= SEED_BATCH:
                for future in pending:
                    future.result()
                pending.clear()
        for future in pending:
            future.result()
    finally:
        store.close()


def postgres_ids(dsn: str, table: str) -> set[str]:
    """Every id in `table` of the Postgres database at `dsn`."""
    with psycopg.connect(dsn) as conn:
        return {str(row[0]) for row in conn.execute(f"SELECT id FROM {table}").fetchall()}


class WriteLoad:
    """Threads of HTTP clients creating messages and events through a sidecar's API for as
    long as the block runs; every acknowledged id and every failed request is recorded.

    With `read_back`, one more thread keeps reading (the latest acknowledged message and a
    page of events) and counts `reads`; any answer but 200 is a failure too."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        threads: int = 4,
        read_back: bool = False,
    ) -> None:
        self.url = url
        self.headers = dict(headers)
        self.stop = threading.Event()
        self.acked: dict[str, list[str]] = {"messages": [], "events": []}
        self.failures: list[str] = []
        self.reads = 0
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._write, args=(n,), name=f"load-{n}")
            for n in range(threads)
        ]
        if read_back:
            self._threads.append(threading.Thread(target=self._read, name="load-reader"))

    def __enter__(self) -> WriteLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=self.headers)

    def _write(self, n: int) -> None:
        with self._client() as http:
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

    def _read(self) -> None:
        with self._client() as http:
            while not self.stop.is_set():
                with self._lock:
                    latest = self.acked["messages"][-1] if self.acked["messages"] else None
                try:
                    page = http.get("/v1/events", params={"limit": 20})
                    one = http.get(f"/v1/messages/{latest}") if latest else page
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"read: {exc!r}")
                    continue
                with self._lock:
                    self.reads += 1
                    for response in (page, one):
                        if response.status_code != 200:
                            self.failures.append(f"read: {response.status_code} {response.text}")

    @property
    def total(self) -> int:
        """Acknowledged writes so far, every table."""
        with self._lock:
            return sum(len(ids) for ids in self.acked.values())

    def wait_for_writes(self, count: int, timeout: float = 60) -> None:
        """Block until `count` more writes than now were acknowledged (fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        start = self.total
        while self.total < start + count:
            assert time.monotonic() < deadline, f"the load wrote {self.total - start} of {count}"
            time.sleep(0.01)


def assert_acked_in_postgres(load: WriteLoad, dsn: str) -> None:
    """Every write the load saw acknowledged is in the Postgres database at `dsn`."""
    for table, acked in load.acked.items():
        missing = set(acked) - postgres_ids(dsn, table)
        assert not missing, f"{len(missing)} acknowledged {table} missing from Postgres"


def rows_moving(doc: Mapping[str, Any]) -> bool:
    """The promotion document shows the copy under way (rows copied). A promotion already
    over can never get there: that fails at once, with the document."""
    assert doc["state"] not in TERMINAL, doc
    return bool(doc["state"] == "Copying" and sum((doc.get("rows_copied") or {}).values()) > 0)


def wait_for_promotion(
    sidecar: httpx.Client | str,
    done: Callable[[dict[str, Any]], bool],
    *,
    headers: Mapping[str, str],
    timeout: float = 120,
    pause: float = 0.02,
) -> dict[str, Any]:
    """Poll GET /admin/promotion on `sidecar` (a client, or the sidecar's base URL) every
    `pause` seconds until `done(document)`; return that document. Every document must match
    the API's schema; fail with the last one after `timeout`."""
    with contextlib.ExitStack() as stack:
        http = (
            sidecar
            if isinstance(sidecar, httpx.Client)
            else stack.enter_context(httpx.Client(base_url=sidecar, timeout=10))
        )
        deadline = time.monotonic() + timeout
        while True:
            doc: dict[str, Any] = http.get("/admin/promotion", headers=dict(headers)).json()
            PromotionOut.model_validate(doc)
            if done(doc):
                return doc
            assert time.monotonic() < deadline, f"promotion stuck: {doc}"
            time.sleep(pause)
