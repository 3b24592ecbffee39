"""Benchmark: the write pause of an online promotion at 1 MB, 100 MB and 1 GB, under writes.

For each size a store file (real migrations, ~1 KB `messages` rows) is generated once into
$LITESHIFT_BENCH_CACHE and copied fresh for every run. A run:

1. starts `liteshift serve` on the copy (a subprocess, as in production) and a durable
   throwaway Postgres (`start_postgres(durable=True)`: fsync on);
2. drives `--writers` client threads that POST `/v1/events` back to back and record every
   request's start, latency and status;
3. `POST /admin/promotion` and polls `GET /admin/promotion` until Promoted (or RolledBack);
4. keeps writing one more second on the promoted sidecar, then stops the load and checks that
   every acknowledged event id is in Postgres.

The write pause is the sidecar's own `write_pause_ms` (gate closed → gate open); the client
view is the longest write latency seen during the whole run. The baseline named in the table
is the downtime an offline copy would need: `promote_offline` (readiness, scan, copy, verify)
of the same file into another empty database, measured in the same run. Medians of `--runs`.

    .venv/bin/python bench/promotion_pause.py [--sizes 1,100,1024] [--runs 3] [--writers 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import apsw
import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from backup import generate  # noqa: E402  (bench/, this script's directory)

from liteshift.local.ports import free_port  # noqa: E402
from liteshift.local.postgres import PostgresServer, start_postgres  # noqa: E402
from liteshift.promotion.offline import promote_offline  # noqa: E402

API_TOKEN = "bench-api-token-0123456789abcdef"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
API = {"Authorization": f"Bearer {API_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PROMOTION_TIMEOUT = 900.0


def cache_dir() -> Path:
    path = Path(os.environ.get("LITESHIFT_BENCH_CACHE", "/tmp/liteshift-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def source(size_mb: int) -> Path:
    path = cache_dir() / f"pause-store-{size_mb}mb.db"
    if not path.exists():
        print(f"generating {path} …", file=sys.stderr)
        # Small batches, so a 1 MB file is about 1 MB (backup's default batch is 50 MB).
        generate(path, size_mb, batch=max(100, min(50_000, size_mb * 200)))
    return path


@dataclass
class Load:
    """Client threads posting events back to back; every request is recorded."""

    url: str
    writers: int
    acknowledged: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, n: int) -> None:
        with httpx.Client(base_url=self.url, headers=API, timeout=60) as client:
            i = 0
            while not self._stop.is_set():
                i += 1
                started = time.perf_counter()
                try:
                    response = client.post(
                        "/v1/events", json={"type": "bench", "payload": {"w": n, "i": i}}
                    )
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                took = time.perf_counter() - started
                with self._lock:
                    self.latencies.append(took)
                    if response.status_code == 201:
                        self.acknowledged.append(response.json()["id"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")

    def __enter__(self) -> Load:
        self._threads = [
            threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(self.writers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


class Sidecar:
    """`liteshift serve` on a SQLite file, as a subprocess."""

    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "LITESHIFT_DB_URL": f"sqlite://{db}",
            "LITESHIFT_PORT": str(self.port),
            "LITESHIFT_API_TOKEN": API_TOKEN,
            "LITESHIFT_ADMIN_TOKEN": ADMIN_TOKEN,
            "LITESHIFT_DATASTORE": "bench",
            "LITESHIFT_NAMESPACE": "bench",
        }
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "liteshift"), "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"sidecar exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"sidecar did not become ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
        self._log.close()


@dataclass
class Run:
    rows: int
    pause_ms: float
    client_max_ms: float
    promotion_s: float
    offline_s: float
    acknowledged: int
    failures: int


def count_rows(db: Path) -> int:
    conn = apsw.Connection(
        f"file:{db}?mode=ro", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
    )
    try:
        return int(conn.execute("SELECT count(*) FROM messages").get)
    finally:
        conn.close()


def one_run(src: Path, work: Path, server: PostgresServer, writers: int) -> Run:
    db = work / "live.db"
    shutil.copyfile(src, db)
    rows = count_rows(db)
    dsn = server.create_database("bench_online")
    offline_dsn = server.create_database("bench_offline")
    try:
        started = time.perf_counter()
        promote_offline(str(src), offline_dsn)
        offline_s = time.perf_counter() - started

        sidecar = Sidecar(db, work / "sidecar.log")
        try:
            admin = httpx.Client(base_url=sidecar.url, headers=ADMIN, timeout=30)
            with Load(sidecar.url, writers) as load:
                time.sleep(1.0)
                started = time.perf_counter()
                response = admin.post("/admin/promotion", json={"target_url": dsn})
                if response.status_code not in (200, 202):
                    raise SystemExit(
                        f"POST /admin/promotion: {response.status_code} {response.text}"
                    )
                while True:
                    doc = admin.get("/admin/promotion").json()
                    if doc["state"] in ("Promoted", "RolledBack"):
                        break
                    if time.perf_counter() - started > PROMOTION_TIMEOUT:
                        raise SystemExit(f"promotion did not finish: {doc}")
                    time.sleep(0.2)
                promotion_s = time.perf_counter() - started
                if doc["state"] != "Promoted":
                    raise SystemExit(f"promotion rolled back: {doc.get('error')}")
                time.sleep(1.0)
            admin.close()
        finally:
            sidecar.stop()

        with psycopg.connect(dsn) as conn:
            ids = {r[0] for r in conn.execute("SELECT id::text FROM events").fetchall()}
        missing = [i for i in load.acknowledged if i not in ids]
        if missing:
            raise SystemExit(f"{len(missing)} acknowledged writes missing in Postgres")
        return Run(
            rows=rows,
            pause_ms=float(doc["write_pause_ms"]),
            client_max_ms=max(load.latencies) * 1000,
            promotion_s=promotion_s,
            offline_s=offline_s,
            acknowledged=len(load.acknowledged),
            failures=len(load.failures),
        )
    finally:
        server.drop_database(dsn)
        server.drop_database(offline_dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,100,1024", help="database sizes in MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=8)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    table: list[tuple[int, list[Run]]] = []
    server = start_postgres(durable=True)
    try:
        run_sizes(server, sizes, args.runs, args.writers, table)
    finally:
        server.stop()
    report(table, args.runs, args.writers)


def run_sizes(
    server: PostgresServer,
    sizes: list[int],
    runs_per_size: int,
    writers: int,
    table: list[tuple[int, list[Run]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            src = source(size)
            runs: list[Run] = []
            for n in range(runs_per_size):
                work = Path(tmp) / f"{size}-{n}"
                work.mkdir()
                run = one_run(src, work, server, writers)
                print(
                    f"{size} MB run {n + 1}: pause {run.pause_ms:.1f} ms, client max "
                    f"{run.client_max_ms:.0f} ms, promotion {run.promotion_s:.1f} s, offline "
                    f"{run.offline_s:.1f} s, {run.acknowledged} acked, {run.failures} failed",
                    file=sys.stderr,
                )
                runs.append(run)
                shutil.rmtree(work)
            table.append((size, runs))


def report(table: list[tuple[int, list[Run]]], runs: int, writers: int) -> None:
    med = statistics.median
    print(
        f"\nOnline promotion under {writers} writers: medians of {runs} runs. Baseline:"
        " the downtime of an offline copy (promote_offline of the same file), same run.\n"
    )
    print(
        "| size | rows | write pause ms (median / max) | pause / offline downtime "
        "| client max write ms | online promotion s | offline downtime s | writes acked "
        "| failed |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, size_runs in table:
        pause = med([r.pause_ms for r in size_runs])
        worst_pause = max(r.pause_ms for r in size_runs)
        offline = med([r.offline_s for r in size_runs])
        print(
            f"| {size} MB | {size_runs[0].rows:,} | {pause:.1f} / {worst_pause:.1f} "
            f"| {pause / 1000 / offline:.4f} | {med([r.client_max_ms for r in size_runs]):.0f} "
            f"| {med([r.promotion_s for r in size_runs]):.1f} | {offline:.1f} "
            f"| {sum(r.acknowledged for r in size_runs):,} | {sum(r.failures for r in size_runs)} |"
        )
    worst = max(r.pause_ms for _, size_runs in table for r in size_runs)
    print(
        f"\ntarget: write pause < 1000 ms at every size — worst {worst:.1f} ms: "
        f"{'MET' if worst < 1000 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
