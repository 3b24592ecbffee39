"""Benchmark: the offline promotion of a 1M-row SQLite store against pgloader.

For the same SQLite file (generated once: `messages` rows of ~400 bytes with JSON metadata,
like the issue's 434 MB database) each run measures, on a durable throwaway Postgres
(`start_postgres(durable=True)`, fsync on, max_wal_size 4GB):

- `pgloader`: `pgloader sqlite:///… postgresql:///…` (Debian package) into an empty database —
  wall time and peak RSS of the pgloader process;
- `liteshift`: `promote_offline` in a child process — readiness, loose-data scan (which also
  computes the SQLite checksums), copy, verification — per phase, and the child's peak RSS.

Each tool runs in its own process, reaped with wait4, so its RSS high-water is its own.
Prints medians of `--runs` runs and the ratio of our (copy + verify) rows/s to pgloader's.

    .venv/bin/python bench/promotion.py [--runs 3] [--rows 1000000] [--ascii]

pgloader 3.6.7 (Debian) stops with "Illegal :UTF-8 character" and then "Heap exhausted" on
the default data set (every row ends in "é"); a crashed or short pgloader run is reported and
left out of its medians. `--ascii` generates ASCII-only text for a like-for-like timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liteshift.local.postgres import create_database, drop_database, start_postgres  # noqa: E402
from liteshift.store.dbapi import format_ts  # noqa: E402
from liteshift.store.migrations import MigrationRunner  # noqa: E402
from liteshift.store.models import JsonValue  # noqa: E402
from liteshift.store.urls import parse_url  # noqa: E402
from liteshift.store.validation import dump_json  # noqa: E402

CACHE = Path(os.environ.get("LITESHIFT_BENCH_CACHE", "/tmp/liteshift-bench-cache"))


def generate(path: Path, rows: int, *, ascii_only: bool = False) -> None:
    """A migrated store whose `messages` table holds `rows` rows in the store's own formats.

    Written with one APSW transaction per 50k rows (the domain API's one-fsync-per-batch
    writer would take minutes for 1M rows); the values are the canonical text the store
    writes (format_ts, dump_json), so the data is what a real store holds.
    """
    import apsw

    with MigrationRunner(parse_url(f"sqlite://{path}")) as runner:
        runner.up()
    conn = apsw.Connection(str(path))
    conn.pragma("journal_mode", "wal")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "the",
        "lazy",
        "dog",
        "while",
        "the",
        "store",
        "keeps",
        "growing",
    ]
    batch: list[tuple[Any, ...]] = []

    def flush() -> None:
        with conn:
            conn.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)", batch)
        batch.clear()

    for i in range(rows):
        tail = f" #{i}" if ascii_only else f" #{i} é"
        content = " ".join(words[(i + j) % len(words)] for j in range(40)) + tail
        metadata: dict[str, JsonValue] = {
            "source": "bench",
            "seq": i,
            "score": (i % 1000) / 7,
            "tags": ["a", "b"],
        }
        batch.append(
            (
                str(uuid.UUID(int=i * 7919 + 1)),
                f"conv-{i % 5000}",
                "user" if i % 2 else "assistant",
                None if i % 3 else "ana",
                content,
                dump_json(metadata),
                format_ts(base + timedelta(milliseconds=i)),
            )
        )
        if len(batch) == 50_000:
            flush()
    if batch:
        flush()
    conn.pragma("wal_checkpoint(TRUNCATE)")
    conn.close()


def run_child(argv: list[str], *, check: bool = True) -> tuple[float, int, str]:
    """Run a process; return (wall seconds, peak RSS in bytes, stdout)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        if check:
            raise SystemExit(f"{argv[0]} failed ({process.returncode}):\n{text[-3000:]}")
        text = f"EXIT {process.returncode}\n{text}"
    return elapsed, usage.ru_maxrss * 1024, text


def ours(db: Path, dsn: str) -> dict[str, float]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from liteshift.promotion.offline import promote_offline\n"
        f"r = promote_offline({str(db)!r}, {dsn!r})\n"
        "print('RESULT ' + json.dumps(r.seconds))\n"
    )
    wall, rss, text = run_child([sys.executable, "-c", code])
    line = next(x for x in text.splitlines() if x.startswith("RESULT "))
    seconds: dict[str, float] = json.loads(line[len("RESULT ") :])
    return {**seconds, "wall": wall, "rss": float(rss)}


def pgloader(db: Path, dsn: str) -> dict[str, float]:
    """pgloader's wall time and RSS; `failed` 1 when it crashed, `rows` what it really loaded."""
    import psycopg

    wall, rss, text = run_child(["/usr/bin/pgloader", f"sqlite://{db}", dsn], check=False)
    failed = text.startswith("EXIT ")
    try:
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM messages").fetchone()
            rows = float(row[0]) if row else 0.0
    except psycopg.Error:
        rows = 0.0
    if failed:
        print("pgloader crashed: " + " | ".join(text.splitlines()[1:6]), flush=True)
    return {"wall": wall, "rss": float(rss), "failed": float(failed), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--ascii",
        action="store_true",
        help="ASCII-only text (pgloader 3.6.7 crashes on this data set's 'é' rows)",
    )
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    db = CACHE / f"promotion-{args.rows}{'-ascii' if args.ascii else ''}.db"
    if not db.exists():
        print(f"generating {args.rows} rows into {db} …", flush=True)
        tmp = db.with_suffix(".tmp")
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        generate(tmp, args.rows, ascii_only=args.ascii)
        tmp.rename(db)
    size = db.stat().st_size
    print(f"{db}: {size / 2**20:.0f} MiB, {args.rows} messages", flush=True)
    server = start_postgres(durable=True)
    results: dict[str, list[dict[str, float]]] = {"pgloader": [], "liteshift": []}
    try:
        for run in range(args.runs):
            for name, fn in (("pgloader", pgloader), ("liteshift", ours)):
                dsn = create_database(server.admin_dsn, f"bench_{name}")
                try:
                    results[name].append(fn(db, dsn))
                finally:
                    drop_database(server.admin_dsn, dsn)
                results[name][-1]["load"] = os.getloadavg()[0]
                print(f"run {run + 1} {name}: {results[name][-1]}", flush=True)
    finally:
        server.stop()
    report(results, args.rows, size, args.runs)


def report(results: dict[str, list[dict[str, float]]], rows: int, size: int, runs: int) -> None:
    """Medians table; our phases are printed even when every pgloader run failed."""
    ok = [r for r in results["pgloader"] if not r["failed"] and r["rows"] == rows]
    crashed = len(results["pgloader"]) - len(ok)
    loads = [r["load"] for name in results for r in results[name]]
    results = {**results, "pgloader": ok}

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    print(f"\npgloader: {crashed} of {len(ok) + crashed} run(s) crashed or loaded fewer rows")
    pg_rate = rows / med("pgloader", "wall") if ok else None

    def versus(rate: float) -> str:
        return f"{rate / pg_rate:.2f}x" if pg_rate else "—"

    copy = med("liteshift", "copy")
    verify = med("liteshift", "verify")
    scan = med("liteshift", "scan")
    ours_rate = rows / (copy + verify)
    mb = size / 1e6
    print(
        f"\nmedians of {runs} run(s), {rows} rows, {mb:.0f} MB SQLite file, "
        f"1-min load average {min(loads):.1f}-{max(loads):.1f} after each run\n"
    )
    print("| tool | phase | seconds | rows/s | MB/s | peak RSS MB | vs pgloader |")
    print("|---|---|---:|---:|---:|---:|---:|")
    if pg_rate:
        print(
            f"| pgloader | copy (everything) | {med('pgloader', 'wall'):.1f} | {pg_rate:,.0f} | "
            f"{mb / med('pgloader', 'wall'):.0f} | {med('pgloader', 'rss') / 1e6:.0f} | 1.00x |"
        )
    else:
        print("| pgloader | copy (everything) | failed every run | | | | |")
    for phase in ("readiness", "scan", "copy", "verify"):
        secs = med("liteshift", phase)
        rate = rows / secs if secs > 0 else 0
        print(f"| liteshift | {phase} | {secs:.1f} | {rate:,.0f} | {mb / secs:.0f} | | |")
    print(
        f"| liteshift | **copy + verify** | {copy + verify:.1f} | {ours_rate:,.0f} | "
        f"{mb / (copy + verify):.0f} | {med('liteshift', 'rss') / 1e6:.0f} | "
        f"{versus(ours_rate)} |"
    )
    total = scan + copy + verify + med("liteshift", "readiness")
    print(
        f"| liteshift | all phases (incl. scan) | {total:.1f} | {rows / total:,.0f} | "
        f"{mb / total:.0f} | | {versus(rows / total)} |"
    )


if __name__ == "__main__":
    main()
