"""Benchmark: the store writer's latency on a 1 GB database, checkpointer vs autocheckpoint.

N threads append events through liteshift's SQLite store (`synchronous=FULL`, one
group-commit writer) at a 1 ms cadence each, for `--seconds`, on a fresh copy of the 1.1 GB
database `bench/backup.py` generates. Two modes:

- `checkpointer`: the store as shipped: checkpoints on their own thread (`checkpoint_pages`
  1000), the writer never checkpoints;
- `autocheckpoint`: `checkpoint_pages=0`, SQLite's automatic checkpoint inside the writer's
  COMMIT (the store before the checkpointer).

Prints p50/p99/max write latency (enqueue to acknowledgement), writes/s and the largest
`-wal` file seen (sampled every 20 ms), medians of `--runs` runs. `--disk-noise` adds a
thread rewriting a 256 MB file beside the database with an fsync every 16 MB, as fast as the
disk takes it (a shared, busy disk). `--dirty-copy` skips the fsync of the fresh copy, as
`bench/backup.py` does: the main file then starts with ~1 GB of dirty pages in the page cache,
and the first checkpoints' fsync of the main file has to write them all out.

    .venv/bin/python bench/backup.py --runs 1 --load store   # once: generates the database
    .venv/bin/python bench/writer_stalls.py [--runs 3] [--writers 4] [--seconds 30]
        [--disk-noise] [--dirty-copy]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liteshift.store.models import EventIn  # noqa: E402
from liteshift.store.sqlite import SqliteStore  # noqa: E402

MODES = {"checkpointer": 1000, "autocheckpoint": 0}


@dataclass
class Run:
    p50_ms: float
    p99_ms: float
    max_ms: float
    writes_per_second: float
    wal_peak_mb: float
    checkpoints: int
    restarts: int


def _fresh_copy(source: Path, directory: Path, *, dirty: bool) -> Path:
    dest = directory / "stalls.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, dest)
    if dirty:
        return dest
    # On disk before the run: the copy's dirty pages must not flush during the measurement.
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return dest


def _disk_noise(path: Path, stop: threading.Event) -> None:
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while not stop.is_set():
            for mb in range(256):
                os.pwrite(fd, block, mb << 20)
                if mb % 16 == 15:
                    os.fsync(fd)
                if stop.is_set():
                    break
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)


def _one_run(db: Path, checkpoint_pages: int, writers: int, seconds: float, noise: bool) -> Run:
    store = SqliteStore(str(db), checkpoint_pages=checkpoint_pages)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(writers)]
    errors: list[str] = []
    wal_peak = 0

    def write(n: int) -> None:
        mine = latencies[n]
        try:
            while not stop.is_set():
                started = time.monotonic()
                store.append_event(EventIn(type=f"w{n}", payload={"x": "x" * 200}))
                mine.append(time.monotonic() - started)
                time.sleep(0.001)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    def sample_wal() -> None:
        nonlocal wal_peak
        wal = Path(f"{db}-wal")
        while not stop.wait(0.02):
            with contextlib.suppress(FileNotFoundError):
                wal_peak = max(wal_peak, wal.stat().st_size)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    threads.append(threading.Thread(target=sample_wal))
    if noise:
        threads.append(threading.Thread(target=_disk_noise, args=(db.parent / "noise", stop)))
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    store.close()
    if errors:
        raise SystemExit(f"writes failed: {errors[:3]}")
    merged = sorted(x for mine in latencies for x in mine)

    def pct(q: float) -> float:
        return merged[min(len(merged) - 1, int(q * len(merged)))] * 1000

    return Run(
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=merged[-1] * 1000,
        writes_per_second=len(merged) / seconds,
        wal_peak_mb=wal_peak / 1e6,
        checkpoints=store.checkpoints,
        restarts=store.wal_restarts,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument(
        "--db",
        type=Path,
        default=Path(os.environ.get("LITESHIFT_BENCH_CACHE", "/tmp/liteshift-bench-cache"))
        / "backup-store-1024mb.db",
    )
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--disk-noise", action="store_true")
    parser.add_argument("--dirty-copy", action="store_true")
    args = parser.parse_args()
    if not args.db.is_file():
        raise SystemExit(f"{args.db} missing: run bench/backup.py --runs 1 --load store first")
    modes = args.modes.split(",")
    results: dict[str, list[Run]] = {mode: [] for mode in modes}
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(dir=args.db.parent) as tmp:
        for run in range(args.runs):
            for mode in modes:  # interleaved, so a burst of foreign load hits both
                db = _fresh_copy(args.db, Path(tmp), dirty=args.dirty_copy)
                result = _one_run(db, MODES[mode], args.writers, args.seconds, args.disk_noise)
                results[mode].append(result)
                loads.append(os.getloadavg()[0])
                print(f"run {run + 1} {mode}: {result}", flush=True)
    print(
        f"\n{args.writers} store writers (synchronous=FULL), {args.seconds:.0f} s per run, "
        f"medians of {args.runs} runs; {args.db.stat().st_size / 1e9:.2f} GB database; "
        f"started {started}; 1-min load average {min(loads):.1f}-{max(loads):.1f}"
        f"{'; --disk-noise' if args.disk_noise else ''}"
        f"{'; --dirty-copy' if args.dirty_copy else ''}\n"
    )
    print("| mode | p50 ms | p99 ms | max ms | writes/s | peak WAL MB | checkpoints | restarts |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode, runs in results.items():

        def med(name: str, runs: list[Run] = runs) -> float:
            return float(statistics.median(getattr(r, name) for r in runs))

        print(
            f"| {mode} | {med('p50_ms'):.1f} | {med('p99_ms'):.1f} | {med('max_ms'):.1f} | "
            f"{med('writes_per_second'):.0f} | {med('wal_peak_mb'):.1f} | "
            f"{med('checkpoints'):.0f} | {med('restarts'):.0f} |"
        )
        maxima = ", ".join(f"{r.max_ms:.0f}" for r in runs)
        print(f"<!-- {mode} max per run: {maxima} ms -->")


if __name__ == "__main__":
    main()
