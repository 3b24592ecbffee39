"""Benchmark: the sidecar's cost per request with no HTTP server, the ASGI app driven directly.

The load-independent companion of `bench/sidecar.py`: the same app (`build_app` there: the
sidecar as `liteshift serve` builds it, plus its no-op routes) called in-process under uvloop,
so the figures are the serving thread's own CPU per request (`time.thread_time`), free of
`wrk`, the kernel's loopback path and other tenants of the machine. Requests, one after
another unless said:

- `noop get`: the no-op route (the ceiling the HTTP benchmark compares reads with);
- `floor get`: the bench-only floor route of `bench/sidecar.py` (the point read's SQL, the
  document built by SQLite, on an APSW connection of its own; none of the store's layers);
- `sidecar get`: `GET /v1/messages/{id}`, the real read;
- `noop write`: the no-store write route (parses, validates, builds the row and response);
- `sidecar write @64`: `POST /v1/events`, 64 at a time, through the group-commit writer
  (`synchronous=FULL`); its CPU is the serving thread's only (the writer thread's is not in it).

    .venv/bin/python bench/sidecar_inprocess.py [--runs 5] [--requests 20000] [--rows 20000]

Prints the median µs per request over `--runs`, and each one's cost beyond the no-op route.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sidecar import TOKEN, build_app, seed  # bench/sidecar.py

BODY = b'{"type":"bench","payload":{"k":"v"},"subject_id":"s"}'
WRITERS = 64


def _scope(method: str, path: str, body: bool) -> dict[str, Any]:
    headers = [(b"host", b"bench"), (b"authorization", b"Bearer " + TOKEN.encode())]
    if body:
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }


async def _request(app: Any, method: str, path: str) -> int:
    body = BODY if method == "POST" else b""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, method == "POST"), receive, send)
    return status


async def _measure(
    app: Any, method: str, path_of: Callable[[int], str], requests: int, concurrency: int
) -> tuple[float, float]:
    """(µs of the serving thread's CPU, µs of wall time) per request."""

    async def worker(first: int) -> None:
        for i in range(first, requests, concurrency):
            status = await _request(app, method, path_of(i))
            if status >= 300:
                raise RuntimeError(f"{method} {path_of(i)} answered {status}")

    for i in range(min(200, requests)):  # warm-up: caches, lazily opened connections
        await _request(app, method, path_of(i))
    cpu, wall = time.thread_time(), time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    return 1e6 * cpu / requests, 1e6 * wall / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()

    import uvloop

    workdir = Path(tempfile.mkdtemp(prefix="liteshift-bench-inprocess-"))
    try:
        db = workdir / "bench.db"
        print(f"seeding {args.rows} messages …", flush=True)
        ids = seed(db, args.rows)[:500]
        app = build_app(str(db), 256)
        workloads: list[tuple[str, str, Callable[[int], str], int]] = [
            ("noop get", "GET", lambda i: "/v1/_noop", 1),
            ("floor get", "GET", lambda i: f"/v1/_floor/{ids[i % len(ids)]}", 1),
            ("sidecar get", "GET", lambda i: f"/v1/messages/{ids[i % len(ids)]}", 1),
            ("noop write", "POST", lambda i: "/v1/_noop_write", 1),
            (f"sidecar write @{WRITERS}", "POST", lambda i: "/v1/events", WRITERS),
        ]
        cpu: dict[str, list[float]] = {name: [] for name, *_ in workloads}
        wall: dict[str, list[float]] = {name: [] for name, *_ in workloads}

        async def run_all() -> None:
            for n in range(args.runs):
                print(f"run {n + 1}/{args.runs}", flush=True)
                for name, method, path_of, concurrency in workloads:
                    used, took = await _measure(app, method, path_of, args.requests, concurrency)
                    cpu[name].append(used)
                    wall[name].append(took)

        try:
            uvloop.run(run_all())
        finally:
            app.state.sidecar.store.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    noop = statistics.median(cpu["noop get"])
    noop_write = statistics.median(cpu["noop write"])
    print(f"\nmedians of {args.runs} runs, {args.requests} requests each, ASGI driven in-process\n")
    print("| request | serving-thread CPU µs | wall µs | beyond its no-op route µs |")
    print("|---|---:|---:|---:|")
    for name, method, *_ in workloads:
        mine = statistics.median(cpu[name])
        base = noop_write if method == "POST" else noop
        beyond = "" if name.startswith("noop") else f"{mine - base:.1f}"
        print(f"| {name} | {mine:.1f} | {statistics.median(wall[name]):.1f} | {beyond} |")


if __name__ == "__main__":
    main()
