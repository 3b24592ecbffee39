"""Benchmark: a verified liteshift backup of a 1 GB SQLite database, idle and under writes.

Compared with `cp` (the physical limit; unsafe on a live database), the `sqlite3` shell's
`.backup`, and `VACUUM INTO`. Under load a separate writer process inserts at a 1 ms cadence
per thread and records every write's latency; the table shows p99/max of the writes that
started while each method ran, and the largest WAL seen. Medians of `--runs` runs.

    .venv/bin/python bench/backup.py [--runs 3] [--writers 4] [--size-mb 1024] [--load apsw,store]

The database is generated once into $LITESHIFT_BENCH_CACHE (default
/tmp/liteshift-bench-cache) and reused; under load each run works on a fresh copy of it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import apsw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liteshift.backup import create_backup, verify_backup  # noqa: E402

SQLITE3_LOAD_TIMEOUT = 30.0


def cache_dir() -> Path:
    path = Path(os.environ.get("LITESHIFT_BENCH_CACHE", "/tmp/liteshift-bench-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def generate(path: Path, size_mb: int, *, batch: int = 50_000) -> None:
    """A store database (real migrations) of about `size_mb` MB, mostly ~1 KB messages in the
    store's canonical formats (µs timestamps), inserted `batch` rows per transaction."""
    from liteshift.store import open_store

    tmp = path.with_suffix(".tmp")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    open_store(f"sqlite://{tmp}", migrate=True).close()
    conn = apsw.Connection(str(tmp))
    conn.execute("PRAGMA synchronous=OFF")
    done = 0
    while (
        conn.execute("SELECT page_count * page_size FROM pragma_page_count, pragma_page_size").get
        < size_mb * 1024 * 1024
    ):
        with conn:
            conn.execute(
                "WITH RECURSIVE n(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
                "INSERT INTO messages (id, conversation_id, role, sender, content, metadata, "
                "created_at) SELECT printf('00000000-0000-4000-8000-%012d', x), "
                "'conv-' || (x % 997), 'user', NULL, "
                "hex(randomblob(400)) || ' ' || hex(randomblob(50)), '{}', "
                "strftime('%Y-%m-%dT%H:%M:%f', '2026-01-01', printf('+%d seconds', x)) || '000Z' "
                "FROM n",
                (done, done + batch - 1),
            )
        done += batch
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    os.replace(tmp, path)


# --- write load (a separate process, so the GIL of the measured process is not shared) ------


def _writer_process(  # noqa: PLR0917 - a multiprocessing target takes positionals
    db: str, threads: int, mode: str, conn_out: Connection, ready: Any, stop: Any
) -> None:
    """Writers in their own process: `apsw` = one connection per thread (synchronous=NORMAL,
    checkpoints on a separate thread); `store` = liteshift's store (one group-commit writer,
    synchronous=FULL, as the sidecar runs it)."""
    samples: list[tuple[float, float]] = []
    errors: list[str] = []
    lock = threading.Lock()
    store = None
    if mode == "store":
        from liteshift.store import open_store
        from liteshift.store.models import EventIn

        store = open_store(f"sqlite://{db}")

    def insert_apsw(conn: apsw.Connection, n: int) -> None:
        conn.execute(
            "INSERT INTO events (id, type, subject_id, payload, created_at) "
            "VALUES (lower(hex(randomblob(16))), ?, NULL, ?, "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
            (f"w{n}", "x" * 200),
        )

    def write(n: int) -> None:
        conn = None
        if store is None:
            conn = apsw.Connection(db)
            conn.set_busy_timeout(5000)
            conn.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints off the write path, as the store's writer does (docs/backup.md).
            conn.execute("PRAGMA wal_autocheckpoint=0")
        local: list[tuple[float, float]] = []
        try:
            while not stop.is_set():
                started = time.monotonic()
                if conn is not None:
                    insert_apsw(conn, n)
                else:
                    assert store is not None
                    store.append_event(EventIn(type=f"w{n}", payload={"x": "x" * 200}))
                local.append((started, time.monotonic() - started))
                time.sleep(0.001)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            if conn is not None:
                conn.close()
            with lock:
                samples.extend(local)

    def checkpoint() -> None:
        conn = apsw.Connection(db)
        while not stop.wait(1.0):
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        conn.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    if store is None:
        workers.append(threading.Thread(target=checkpoint))
    for worker in workers:
        worker.start()
    ready.set()
    for worker in workers:
        worker.join()
    if store is not None:
        store.close()
    conn_out.send((samples, errors))
    conn_out.close()


@dataclass
class Load:
    db: Path
    threads: int
    mode: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __enter__(self) -> Load:
        ctx = mp.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._ready, self._stop = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(
            target=_writer_process,
            args=(str(self.db), self.threads, self.mode, send, self._ready, self._stop),
        )
        self._proc.start()
        self._ready.wait(30)
        time.sleep(1.0)  # steady state before measuring
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.samples, self.errors = self._recv.recv()
        self._proc.join(30)

    def during(self, start: float, end: float) -> list[float]:
        return sorted(lat for t, lat in self.samples if start <= t <= end)


class WalPeak:
    """Largest -wal size seen while a method runs (sampled every 50 ms)."""

    def __init__(self, db: Path) -> None:
        self.wal = Path(f"{db}-wal")
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(FileNotFoundError):
                self.peak = max(self.peak, self.wal.stat().st_size)

    def __enter__(self) -> WalPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the methods ----------------------------------------------------------------------------


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def m_cp(src: Path, out: Path) -> None:
    subprocess.run(["cp", str(src), str(out / "cp.db")], check=True)


def m_cp_fsync(src: Path, out: Path) -> None:
    m_cp(src, out)
    fsync(out / "cp.db")


def m_sqlite3_backup(src: Path, out: Path, timeout: float | None = None) -> None:
    subprocess.run(
        ["sqlite3", str(src), f".backup '{out / 'sqlite3.db'}'"],
        check=True,
        timeout=timeout,
        capture_output=True,
    )


def m_vacuum_into(src: Path, out: Path) -> None:
    conn = apsw.Connection(str(src), flags=apsw.SQLITE_OPEN_READONLY)
    conn.set_busy_timeout(5000)
    conn.execute("VACUUM INTO ?", (str(out / "vacuum.db"),))
    conn.close()


def m_liteshift(src: Path, out: Path) -> None:
    create_backup(f"sqlite://{src}", out / "liteshift")


def m_unlink_backup(src: Path, out: Path) -> None:
    (out / VICTIM).unlink()


def m_delete_gently(src: Path, out: Path) -> None:
    from liteshift.backup.durable import delete_gently

    delete_gently(out / VICTIM)


#: Rows that copy nothing: no ratio to `sqlite3 .backup`.
NO_RATIO = ("writers alone", "old backup")

#: The backup file the delete methods remove (copied and flushed before the writers start).
VICTIM = "old-backup.db"


def m_liteshift_zstd(src: Path, out: Path) -> None:
    from liteshift.backup import BackupOptions

    create_backup(f"sqlite://{src}", out / "liteshift", BackupOptions(compression="zstd"))


@dataclass
class Row:
    name: str
    scenario: str
    seconds: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    max: list[float] = field(default_factory=list)
    wal: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def timed(fn: Callable[[], None]) -> tuple[float, float, float]:
    start = time.monotonic()
    fn()
    end = time.monotonic()
    return end - start, start, end


def clean(out: Path) -> None:
    for child in out.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def run_idle(src: Path, out: Path, runs: int) -> list[Row]:
    methods: list[tuple[str, Callable[[Path, Path], None]]] = [
        ("cp (unsafe live)", m_cp),
        ("cp + fsync (unsafe live)", m_cp_fsync),
        ("sqlite3 .backup", m_sqlite3_backup),
        ("VACUUM INTO", m_vacuum_into),
        ("liteshift create (copy+quick_check+sha256+manifest)", m_liteshift),
        ("liteshift create --compress zstd", m_liteshift_zstd),
    ]
    rows = [Row(name, "idle") for name, _ in methods]
    verify_row = Row("liteshift verify (sha256+quick_check+counts)", "idle")
    for run in range(runs):
        for row, (_, fn) in zip(rows, methods, strict=True):
            seconds, _, _ = timed(lambda fn=fn: fn(src, out))  # type: ignore[misc]
            row.seconds.append(seconds)
            if fn is m_liteshift:
                backup_dir = next((out / "liteshift").iterdir())
                seconds, _, _ = timed(lambda b=backup_dir: verify_backup(b))  # type: ignore[misc]
                verify_row.seconds.append(seconds)
            clean(out)
        print(f"  idle run {run + 1}/{runs} done", file=sys.stderr)
    return [*rows, verify_row]


def run_load(
    cached: Path, work: Path, out: Path, *, runs: int, threads: int, mode: str
) -> list[Row]:
    methods: list[tuple[str, Callable[[Path, Path], None]]] = [
        ("no backup (writers alone, 3 s)", lambda s, o: time.sleep(3)),
        ("cp (unsafe live)", m_cp),
        ("sqlite3 .backup", lambda s, o: m_sqlite3_backup(s, o, SQLITE3_LOAD_TIMEOUT)),
        ("VACUUM INTO", m_vacuum_into),
        ("liteshift create (copy+quick_check+sha256+manifest)", m_liteshift),
        ("rm of an old backup of the same size (plain unlink)", m_unlink_backup),
        ("liteshift prune of an old backup of the same size (in steps)", m_delete_gently),
    ]
    label = f"{threads} store writers (FULL)" if mode == "store" else f"{threads} writers"
    rows = [Row(name, label) for name, _ in methods]
    for run in range(runs):
        for row, (_, fn) in zip(rows, methods, strict=True):
            if row.failures and not row.seconds:
                continue  # did not finish in the first run: not worth another 30 s
            db = work / "live.db"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)
            if fn in (m_unlink_backup, m_delete_gently):
                shutil.copyfile(cached, out / VICTIM)
                fsync(out / VICTIM)
            shutil.copyfile(cached, db)
            # Flush the fresh copy now: left dirty, its 1.1 GB would be written back while the
            # method runs and every WAL fsync would queue behind it — a cost of preparing the
            # bench, not of the method (a live database is not one freshly copied file).
            fsync(db)
            with Load(db, threads, mode) as load, WalPeak(db) as wal:
                try:
                    seconds, start, end = timed(lambda fn=fn, db=db: fn(db, out))  # type: ignore[misc]
                    row.seconds.append(seconds)
                except subprocess.TimeoutExpired:
                    start, end = time.monotonic() - SQLITE3_LOAD_TIMEOUT, time.monotonic()
                    row.failures.append(f"did not finish in {SQLITE3_LOAD_TIMEOUT:.0f} s")
            lat = load.during(start, end)
            if load.errors:
                row.failures.extend(load.errors[:3])
            if lat:
                row.p99.append(lat[int(len(lat) * 0.99)] * 1000)
                row.max.append(lat[-1] * 1000)
            row.wal.append(wal.peak)
            clean(out)
        print(f"  {mode} load run {run + 1}/{runs} done", file=sys.stderr)
    return rows


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(rows: list[Row], reference: float) -> str:
    lines = [
        "| scenario | method | median s | ratio to sqlite3 .backup (idle) | writer p99 ms "
        "| writer max ms | peak WAL MB | notes |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        seconds = med(row.seconds)
        ratio = (
            f"{seconds / reference:.2f}"
            if seconds is not None and not any(word in row.name for word in NO_RATIO)
            else "—"
        )
        p99, mx = med(row.p99), med(row.max)
        wal = max(row.wal, default=0) / 1e6
        lines.append(
            f"| {row.scenario} | {row.name} | "
            f"{'DNF' if seconds is None else f'{seconds:.2f}'} | {ratio} | "
            f"{'—' if p99 is None else f'{p99:.1f}'} | {'—' if mx is None else f'{mx:.1f}'} | "
            f"{f'{wal:.0f}' if row.wal else '—'} | "
            f"{'; '.join(sorted(set(row.failures))) or ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument(
        "--load",
        default="apsw,store",
        help="write loads: apsw (a connection per thread), store (liteshift's group commit)",
    )
    args = parser.parse_args()

    cached = cache_dir() / f"backup-store-{args.size_mb}mb.db"
    if not cached.exists():
        print(f"generating {cached} (once) …", file=sys.stderr)
        generate(cached, args.size_mb)
    size = cached.stat().st_size
    with tempfile.TemporaryDirectory(prefix="liteshift-bench-", dir=cache_dir()) as tmp:
        out = Path(tmp) / "out"
        work = Path(tmp) / "work"
        out.mkdir()
        work.mkdir()
        # Warm the page cache the same way for every method.
        subprocess.run(["cat", str(cached)], stdout=subprocess.DEVNULL, check=True)
        rows = run_idle(cached, out, args.runs)
        if not args.skip_load:
            for mode in args.load.split(","):
                rows += run_load(cached, work, out, runs=args.runs, threads=args.writers, mode=mode)
    reference = med(next(r for r in rows if r.name == "sqlite3 .backup").seconds) or 1.0
    load = os.getloadavg()
    print(
        f"\n{size / 1e9:.2f} GB database, median of {args.runs} runs, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    print(report(rows, reference))


if __name__ == "__main__":
    main()
