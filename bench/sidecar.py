"""Benchmark: the sidecar's HTTP throughput and latency against its ceilings and peers.

One run measures requests/s and p50/p99 latency for single-row reads, list pages (50 rows) and
single-row writes at 1, 16 and 64 concurrent clients, with `wrk` (a separate process) as the
load generator, for:

- `sidecar`: `liteshift`'s app under uvicorn (uvloop + httptools), durable writes
  (synchronous=FULL) through the group-commit writer;
- `noop`: a route on the same server, behind the same middleware and endpoint wrapper, that
  touches no store (the HTTP ceiling; added only here, never in production routes; mounted
  last, which costs nothing extra: routes are looked up by path segments, not tried in
  order, so every route pays the same routing cost); its
  `write` workload posts the same event body to a route that parses and validates it and
  builds the same row and response, without a store (the ceiling for writes over HTTP);
- `floor` (reads at 16 clients): a bench-only route on the same server running the SQL the
  sidecar's point read runs (`point_json_sql`: the document built by SQLite) on an APSW
  connection of its own and returning its result as is: the point read without the store's
  layers (dispatch, inline-read budget, metrics, id validation). What it reaches against
  `noop` bounds what any point read through this HTTP stack can reach;
- `apsw`: raw APSW calls in-process, one connection per thread (the storage ceiling);
- `datasette`: Datasette serving the same file (reads only; the peer);
- `baseline`: the sidecar with one transaction per request (`batch_max_ops=1`, i.e. one
  BEGIN IMMEDIATE…COMMIT and one fsync per write: the naive baseline for writes).

    .venv/bin/python bench/sidecar.py [--runs 3] [--duration 4] [--rows 20000]

Prints a table (medians over `--runs`) and the target ratios. `--serve` is internal: it runs
one sidecar server for the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liteshift.local.ports import free_port

TOKEN = "bench-api-token"
CONCURRENCY = (1, 16, 64)
WRK = shutil.which("wrk") or "/usr/bin/wrk"
PYTHON = sys.executable


# --- the server under test (run in a subprocess with --serve) ------------------------------


def build_app(db: str, batch_max_ops: int, extra: list[Any] | None = None) -> Any:
    """The sidecar app on `db` as `liteshift serve` builds it, plus the benchmark's no-op routes
    (and `extra` operations); durable writes (synchronous=FULL)."""
    import apsw

    from liteshift.sidecar import Settings, create_app
    from liteshift.sidecar.metrics import Metrics
    from liteshift.sidecar.responses import JsonBytes, json_response
    from liteshift.sidecar.routing import Call, Operation, with_id
    from liteshift.sidecar.schemas import EventCreate, EventOut
    from liteshift.store import open_store
    from liteshift.store.base import MESSAGE_JSON
    from liteshift.store.models import Event, EventIn
    from liteshift.store.sqlite import point_json_sql

    async def noop(call: Call) -> Any:
        return json_response({"ok": True})

    async def noop_write(call: Call) -> Any:
        event = EventIn(**with_id(call.body))
        return Event(event.id, event.type, event.subject_id, event.payload, datetime.now(UTC))

    # The floor of any point read through this HTTP stack: the SQL the SQLite store runs for
    # GET /v1/messages/{id} (the document built by SQLite), on an APSW connection of its own,
    # its result returned as is. None of the store's layers: no operation dispatch, no
    # inline-read budget, no metrics, no id validation. Its connection is opened by the first
    # request and closed by `DELETE /v1/_floor`: with it open from the start, the sidecar's
    # writes measured slower (8 of 9 alternating pairs; cause not found), so `one_run` holds
    # it open only while it measures this route.
    floor_sql = point_json_sql(MESSAGE_JSON)
    floor_conn: list[apsw.Connection] = []

    async def floor(call: Call) -> Any:
        if not floor_conn:
            floor_conn.append(apsw.Connection(db, flags=apsw.SQLITE_OPEN_READONLY))
        rows = floor_conn[0].execute(floor_sql, (call.params["id"],)).fetchall()
        return JsonBytes(rows[0][0].encode())

    async def close_floor(call: Call) -> Any:
        while floor_conn:
            floor_conn.pop().close()

    settings = Settings(
        db_url=f"sqlite:///{db}",
        api_token=TOKEN,
        admin_token=TOKEN + "-admin",
        token_dir=Path(db).parent,
    )
    metrics = Metrics(settings.datastore, settings.namespace)
    store = open_store(
        settings.db_url,
        migrate=True,
        observer=metrics.observe,
        batch_max_ops=batch_max_ops,
        synchronous="FULL",
    )
    return create_app(
        settings,
        store,
        metrics=metrics,
        extra_operations=[
            Operation("GET", "/v1/_noop", noop, "bench only: the HTTP ceiling", "bench"),
            Operation("GET", "/v1/_floor/{id}", floor, "bench only: the point-read floor", "bench"),
            Operation(
                "DELETE",
                "/v1/_floor",
                close_floor,
                "bench only: close its connection",
                "bench",
                status=204,
            ),
            Operation(
                "POST",
                "/v1/_noop_write",
                noop_write,
                "bench only: the HTTP ceiling for writes",
                "bench",
                body=EventCreate,
                response=EventOut,
                status=201,
            ),
            *(extra or []),
        ],
    )


def serve(db: str, port: int, batch_max_ops: int) -> None:
    import uvicorn

    from liteshift.cli.serve import SERVER_OPTIONS, SWITCH_INTERVAL_SECONDS

    app = build_app(db, batch_max_ops)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)  # as `liteshift serve` does
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        backlog=2048,
        **SERVER_OPTIONS,  # the server `liteshift serve` runs
    )


@contextmanager
def process_on_port(
    cmd: list[str], port: int, ready_path: str, headers: dict[str, str] | None = None
) -> Iterator[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(url + ready_path, headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[:3]} not ready")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sidecar_server(db: Path, batch_max_ops: int) -> Any:
    port = free_port()
    cmd = [PYTHON, __file__, "--serve", str(db), str(port), str(batch_max_ops)]
    return process_on_port(cmd, port, "/healthz")


def datasette_server(db: Path) -> Any:
    port = free_port()
    datasette = str(Path(PYTHON).parent / "datasette")
    cmd = [datasette, "serve", str(db), "--port", str(port), "--host", "127.0.0.1"]
    return process_on_port(cmd, port, "/-/versions.json")


def datasette_copy(db: Path) -> Path:
    """The same file for Datasette, minus the sqlite-vec virtual table.

    Datasette opens files with Python's sqlite3, which here cannot load extensions, and refuses a
    database whose schema names an unknown module (`vec0`). Dropping that one table (with the
    extension loaded through APSW) leaves the messages table, its rows and indexes identical.
    """
    import apsw

    from liteshift.store.vector_index import load_sqlite_extensions

    copy = db.with_name("datasette.db")
    source = apsw.Connection(str(db))
    target = apsw.Connection(str(copy))
    with target.backup("main", source, "main") as backup:
        backup.step(-1)
    source.close()
    load_sqlite_extensions(target, "vec")
    for (name,) in target.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE '%VIRTUAL TABLE%'"
    ).fetchall():
        target.execute(f'DROP TABLE "{name}"')
    target.pragma("journal_mode", "WAL")
    target.close()
    return copy


# --- wrk -----------------------------------------------------------------------------------

DONE = """
done = function(summary, latency, requests)
  local ok = summary.requests - summary.errors.status - summary.errors.connect
             - summary.errors.read - summary.errors.write - summary.errors.timeout
  io.write(string.format('RESULT {"requests": %d, "ok": %d, "duration_us": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n', summary.requests, ok, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_reads(paths: list[str], headers: dict[str, str]) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    quoted = ",".join(f'"{p}"' for p in paths)
    return "\n".join(
        [
            *lines,
            f"local paths = {{{quoted}}}",
            "local i = 0",
            "request = function()",
            "  i = i + 1",
            "  return wrk.format('GET', paths[(i % #paths) + 1])",
            "end",
            DONE,
        ]
    )


def lua_writes(path: str, body: str, headers: dict[str, str]) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    return "\n".join(
        [
            *lines,
            'wrk.method = "POST"',
            f"wrk.path = '{path}'",
            f"wrk.body = '{body}'",
            'wrk.headers["Content-Type"] = "application/json"',
            DONE,
        ]
    )


def run_wrk(url: str, script: str, clients: int, duration: float, workdir: Path) -> dict[str, Any]:
    lua = workdir / "script.lua"
    lua.write_text(script)
    threads = 1 if clients == 1 else 2
    out = subprocess.run(
        [
            WRK,
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(lua),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    seconds = raw["duration_us"] / 1e6
    return {
        "rps": raw["ok"] / seconds,
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "errors": raw["requests"] - raw["ok"],
    }


# --- raw APSW (in-process storage ceiling) -------------------------------------------------


def apsw_threads(
    db: Path, clients: int, duration: float, make: Callable[[Any], Callable[[], None]]
) -> dict[str, Any]:
    import apsw

    latencies: list[list[float]] = [[] for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = time.monotonic() + duration + 1e9

    def worker(n: int) -> None:
        conn = apsw.Connection(str(db))
        conn.set_busy_timeout(30000)
        conn.pragma("synchronous", "FULL")
        op = make(conn)
        mine = latencies[n]
        barrier.wait()
        while time.monotonic() < stop:
            t = time.perf_counter()
            op()
            mine.append(time.perf_counter() - t)
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    stop = started + duration
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    flat = sorted(x for per in latencies for x in per)
    return {
        "rps": len(flat) / elapsed,
        "p50_ms": flat[len(flat) // 2] * 1000,
        "p99_ms": flat[int(len(flat) * 0.99)] * 1000,
        "errors": 0,
    }


# --- the benchmark -------------------------------------------------------------------------


def seed(db: Path, rows: int) -> list[str]:
    from liteshift.store import open_store
    from liteshift.store.models import MessageIn

    store = open_store(f"sqlite:///{db}", migrate=True, synchronous="NORMAL")
    try:
        futures = [
            store.submit(
                store.create_message,
                MessageIn(
                    conversation_id=f"conv-{i % 100}",
                    role="user",
                    content=f"message {i} " * 8,
                    metadata={"i": i},
                ),
            )
            for i in range(rows)
        ]
        ids = [f.result().id for f in futures]
    finally:
        store.close()
    return ids


def one_run(workdir: Path, db: Path, ids: list[str], duration: float) -> dict[str, Any]:
    results: dict[str, Any] = {}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    sample = ids[:: max(1, len(ids) // 2000)]
    get_paths = [f"/v1/messages/{i}" for i in sample]
    list_paths = [f"/v1/messages?conversation_id=conv-{n}&limit=50" for n in range(100)]
    event = '{"type":"bench","payload":{"k":"v"},"subject_id":"s"}'

    def record(name: str, workload: str, clients: int, value: dict[str, Any]) -> None:
        results[f"{name}/{workload}/{clients}"] = value
        print(
            f"  {name:10} {workload:6} c={clients:<3} {value['rps']:9.0f}/s "
            f"p50 {value['p50_ms']:7.2f} ms p99 {value['p99_ms']:7.2f} ms"
            + (f"  errors {value['errors']}" if value["errors"] else ""),
            flush=True,
        )

    with sidecar_server(db, batch_max_ops=256) as url:
        for c in CONCURRENCY:
            record(
                "noop", "get", c, run_wrk(url, lua_reads(["/v1/_noop"], auth), c, duration, workdir)
            )
            record(
                "sidecar", "get", c, run_wrk(url, lua_reads(get_paths, auth), c, duration, workdir)
            )
            if c == 16:  # the reads target's concurrency; see `floor` in build_app
                floor = lua_reads([f"/v1/_floor/{i}" for i in sample], auth)
                record("floor", "get", c, run_wrk(url, floor, c, duration, workdir))
                httpx.delete(url + "/v1/_floor", headers=auth).raise_for_status()
            record(
                "sidecar",
                "list",
                c,
                run_wrk(url, lua_reads(list_paths, auth), c, duration, workdir),
            )
            record(
                "sidecar",
                "write",
                c,
                run_wrk(url, lua_writes("/v1/events", event, auth), c, duration, workdir),
            )
            record(
                "noop",
                "write",
                c,
                run_wrk(url, lua_writes("/v1/_noop_write", event, auth), c, duration, workdir),
            )
    with sidecar_server(db, batch_max_ops=1) as url:
        for c in CONCURRENCY:
            record(
                "baseline",
                "write",
                c,
                run_wrk(url, lua_writes("/v1/events", event, auth), c, duration, workdir),
            )
    peer_db = datasette_copy(db)
    name = peer_db.stem
    with datasette_server(peer_db) as url:
        ds_get = [f"/{name}/messages/{i}.json" for i in sample]
        ds_list = [
            f"/{name}/messages.json?conversation_id=conv-{n}&_size=50&_sort=created_at"
            for n in range(100)
        ]
        for c in CONCURRENCY:
            record("datasette", "get", c, run_wrk(url, lua_reads(ds_get, {}), c, duration, workdir))
            record(
                "datasette", "list", c, run_wrk(url, lua_reads(ds_list, {}), c, duration, workdir)
            )

    def get_op(conn: Any) -> Callable[[], None]:
        i = iter(range(10**12))

        def op() -> None:
            conn.execute(
                "SELECT * FROM messages WHERE id = ?", (sample[next(i) % len(sample)],)
            ).fetchall()

        return op

    def list_op(conn: Any) -> Callable[[], None]:
        i = iter(range(10**12))

        def op() -> None:
            conn.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY created_at, id LIMIT 51",
                (f"conv-{next(i) % 100}",),
            ).fetchall()

        return op

    def write_op(conn: Any) -> Callable[[], None]:
        import uuid

        def op() -> None:
            with conn:  # one BEGIN…COMMIT (and fsync) per row: what a request would cost
                conn.execute(
                    "INSERT INTO events (id, type, subject_id, payload, created_at) "
                    "VALUES (?, 'bench', 's', '{}', strftime('%Y-%m-%dT%H:%M:%fZ'))",
                    (str(uuid.uuid4()),),
                )

        return op

    for c in CONCURRENCY:
        record("apsw", "get", c, apsw_threads(db, c, duration, get_op))
        record("apsw", "list", c, apsw_threads(db, c, duration, list_op))
        record("apsw", "write", c, apsw_threads(db, c, duration, write_op))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--serve", nargs=3, metavar=("DB", "PORT", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))
        return
    workdir = Path(tempfile.mkdtemp(prefix="liteshift-bench-"))
    try:
        db = workdir / "bench.db"
        print(f"seeding {args.rows} messages …", flush=True)
        ids = seed(db, args.rows)
        load_before = os.getloadavg()
        runs = []
        for n in range(args.runs):
            print(f"run {n + 1}/{args.runs}", flush=True)
            runs.append(one_run(workdir, db, ids, args.duration))
        load_after = os.getloadavg()
        report(runs, load_before, load_after, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    runs: list[dict[str, Any]],
    before: tuple[float, ...],
    after: tuple[float, ...],
    args: argparse.Namespace,
) -> None:
    keys = list(runs[0])
    med = {k: {m: statistics.median(r[k][m] for r in runs) for m in runs[0][k]} for k in keys}
    print()
    print(
        f"medians of {len(runs)} runs, {args.duration:g} s each, wrk in its own process; "
        f"load average before {before[0]:.1f}, after {after[0]:.1f} ({os.cpu_count()} cores)"
    )
    print()
    print("| target | workload | clients | req/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for k in keys:
        name, workload, clients = k.split("/")
        v = med[k]
        print(
            f"| {name} | {workload} | {clients} | {v['rps']:.0f} | {v['p50_ms']:.2f} | "
            f"{v['p99_ms']:.2f} |"
        )
    print()

    def rps(key: str) -> float:
        return float(med[key]["rps"])

    ratios = [
        ("single-row reads @16: sidecar / noop", rps("sidecar/get/16") / rps("noop/get/16"), 0.75),
        (
            "single-row reads @16: sidecar / datasette",
            rps("sidecar/get/16") / rps("datasette/get/16"),
            10.0,
        ),
        (
            "durable writes @64: sidecar / one-txn-per-request",
            rps("sidecar/write/64") / rps("baseline/write/64"),
            3.0,
        ),
    ]
    for label, value, target in ratios:
        print(f"{label}: {value:.2f} (target >= {target:g}) {'OK' if value >= target else 'MISS'}")
    print(
        f"(no target) single-row reads @16: floor / noop: "
        f"{rps('floor/get/16') / rps('noop/get/16'):.2f}, the most a point read through this "
        f"HTTP stack reached; sidecar / floor: {rps('sidecar/get/16') / rps('floor/get/16'):.2f}"
    )
    writes = rps("sidecar/write/64")
    print(
        f"durable writes @64: {writes:.0f}/s (target >= 4000) {'OK' if writes >= 4000 else 'MISS'}"
    )
    print(
        f"(no target) writes @64: sidecar / no-store write route: "
        f"{writes / rps('noop/write/64'):.2f}; 3x the baseline would be "
        f"{3 * rps('baseline/write/64') / rps('noop/write/64'):.2f} of that route"
    )


if __name__ == "__main__":
    main()
