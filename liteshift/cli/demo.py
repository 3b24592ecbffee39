"""`liteshift demo`: the whole story on one machine, no cluster, in about two minutes.

A real sidecar (`liteshift serve`, a subprocess) on a fresh SQLite file; a throwaway Postgres
and a real Prometheus scraping the sidecar every second; HTTP writers that raise the lock wait;
the promotion criteria (`liteshift.promotion.criteria`, thresholds low and a short window so it
happens quickly) evaluated against Prometheus until they say promote; then the online promotion
through the sidecar's admin API (`POST /admin/promotion`) while the writers keep writing, shown
live until Promoted; and a summary: rows and checksums verified, the write pause, failed
requests (0), and every acknowledged write read back from Postgres through the same API.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from liteshift.errors import LiteshiftError
from liteshift.local.errors import LocalServerError
from liteshift.local.ports import free_port
from liteshift.local.postgres import PostgresServer, start_postgres
from liteshift.local.prometheus import PrometheusServer, start_prometheus
from liteshift.promotion.criteria import Action, Decision, Previous, Request, Target, evaluate
from liteshift.promotion.prometheus import PrometheusAPI
from liteshift.promotion.thresholds import Thresholds

DATASTORE = "demo"
NAMESPACE = "local"
CONVERSATIONS = 8
#: Seconds the writers keep writing after the cutover, onto Postgres.
AFTER_CUTOVER_SECONDS = 3.0


class DemoFailed(LiteshiftError):
    """The demo could not show the story to the end (the reason says where it stopped)."""

    code = "demo_failed"


@dataclass
class WriteLoad:
    """Threads posting messages through the sidecar's API; every answer but 201 is a failure."""

    url: str
    token: str
    writers: int
    acked: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for n in range(self.writers):
            thread = threading.Thread(target=self._write, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    @property
    def written(self) -> int:
        with self._lock:
            return sum(len(ids) for ids in self.acked.values())

    def _write(self, n: int) -> None:
        conversation = f"demo-{n % CONVERSATIONS}"
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, timeout=30, headers=headers) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                body = {"conversation_id": conversation, "role": "user", "content": f"w{n} #{i}"}
                try:
                    response = http.post("/v1/messages", json=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(repr(exc))
                    continue
                with self._lock:
                    if response.status_code == 201:
                        self.acked.setdefault(conversation, []).append(response.json()["id"])
                    else:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")


@dataclass
class Sidecar:
    url: str
    api_token: str
    admin_token: str
    process: subprocess.Popen[bytes]
    log: Path

    def admin(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.Client(base_url=self.url, timeout=30, headers=headers)


@contextlib.contextmanager
def running_sidecar(workdir: Path) -> Iterator[Sidecar]:
    """`liteshift serve` on a free loopback port over workdir/demo.db, until the block ends."""
    port = free_port()
    api_token, admin_token = secrets.token_hex(16), secrets.token_hex(16)
    env = {
        **os.environ,
        "LITESHIFT_API_TOKEN": api_token,
        "LITESHIFT_ADMIN_TOKEN": admin_token,
        "LITESHIFT_DATASTORE": DATASTORE,
        "LITESHIFT_NAMESPACE": NAMESPACE,
        "LITESHIFT_LOG_FORMAT": "text",
    }
    log = workdir / "sidecar.log"
    command = [sys.executable, "-c", "from liteshift.cli import main; main()", "serve"]
    command += ["--port", str(port), "--db", f"sqlite:///{workdir / 'demo.db'}"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    sidecar = Sidecar(f"http://127.0.0.1:{port}", api_token, admin_token, process, log)
    try:
        deadline = time.monotonic() + 60
        while not _ready(sidecar.url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-1500:]
                raise DemoFailed(f"the sidecar did not start: {tail}")
            time.sleep(0.2)
        yield sidecar
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def criteria_table(decision: Decision | None, load: WriteLoad, elapsed: float) -> Table:
    table = Table(title=f"Promotion criteria, evaluated against Prometheus ({elapsed:.0f}s)")
    for column in ("criterion", "observed", "threshold", "held for the window", "note"):
        table.add_column(column)
    for item in decision.criteria if decision else ():
        if item.threshold is None and item.name not in ("horizontalScale", "operationalNeeds"):
            continue
        observed = "-" if item.observed is None else f"{item.observed:.4g}"
        threshold = "-" if item.threshold is None else f"{item.threshold:g}"
        held = "[green]yes[/]" if item.sustained else ("met" if item.met else "no")
        table.add_row(item.name, observed, threshold, held, item.message)
    verdict = "waiting for data" if decision is None else f"{decision.action}: {decision.message}"
    table.caption = (
        f"{verdict}   |   writes acknowledged: {load.written}, failed: {len(load.failures)}"
    )
    return table


def promotion_view(doc: dict[str, Any], load: WriteLoad) -> Group:
    progress = doc.get("progress") or {}
    done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
    table = Table(title="Online promotion (POST /admin/promotion)", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("state", f"[bold]{doc.get('state')}[/]")
    table.add_row("phase", f"{doc.get('phase') or '-'} {progress.get('table') or ''}")
    table.add_row("catch-up passes", str(doc.get("catchup_passes")))
    table.add_row("changes pending", str(doc.get("pending_changes")))
    table.add_row("writes acknowledged", f"{load.written} (failed: {len(load.failures)})")
    bar = ProgressBar(total=max(total, 1), completed=min(done, max(total, 1)), width=60)
    return Group(table, bar)


def _wait_for_promote(
    console: Console, prometheus: PrometheusServer, thresholds: Thresholds, load: WriteLoad,
    deadline: float,
) -> tuple[Decision, float]:  # fmt: skip
    api = PrometheusAPI(prometheus.url)
    target, request = Target(DATASTORE, NAMESPACE), Request(policy="auto")
    decision: Decision | None = None
    started = time.monotonic()
    with Live(criteria_table(None, load, 0), console=console, refresh_per_second=4) as live:
        while decision is None or decision.action != Action.PROMOTE:
            if time.monotonic() > deadline:
                raise DemoFailed(
                    "the criteria never held for the whole window: "
                    + (decision.message if decision else "no evaluation")
                )
            if load.failures:
                raise DemoFailed(f"a write failed: {load.failures[0]}")
            previous = Previous(sustained=decision.sustained if decision else frozenset())
            decision = evaluate(target, request, thresholds, api, previous=previous)
            live.update(criteria_table(decision, load, time.monotonic() - started))
            time.sleep(1.0)
    console.line()
    return decision, time.monotonic() - started


def _promote(
    console: Console, sidecar: Sidecar, dsn: str, load: WriteLoad, deadline: float
) -> tuple[dict[str, Any], float]:
    started = time.monotonic()
    with sidecar.admin() as admin:
        answer = admin.post("/admin/promotion", json={"target_url": dsn})
        if answer.status_code not in (200, 202):
            raise DemoFailed(f"POST /admin/promotion answered {answer.status_code}: {answer.text}")
        doc: dict[str, Any] = answer.json()
        with Live(promotion_view(doc, load), console=console, refresh_per_second=8) as live:
            while doc.get("state") not in ("Promoted", "RolledBack"):
                if time.monotonic() > deadline:
                    raise DemoFailed(f"the promotion did not finish in time: {doc}")
                time.sleep(0.25)
                doc = admin.get("/admin/promotion").json()
                live.update(promotion_view(doc, load))
    console.line()
    if doc["state"] != "Promoted":
        raise DemoFailed(f"the promotion rolled back: {doc.get('error')}")
    return doc, time.monotonic() - started


def _read_back(sidecar: Sidecar, load: WriteLoad) -> tuple[int, int]:
    """(acknowledged writes, of those found through the API, now served from Postgres)."""
    headers = {"Authorization": f"Bearer {sidecar.api_token}"}
    found = 0
    with httpx.Client(base_url=sidecar.url, timeout=30, headers=headers) as http:
        for conversation, ids in load.acked.items():
            seen: set[str] = set()
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"conversation_id": conversation, "limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = http.get("/v1/messages", params=params)
                if page.status_code != 200:
                    raise DemoFailed(f"reading back failed: {page.status_code} {page.text}")
                body = page.json()
                seen.update(item["id"] for item in body["items"])
                cursor = body.get("next_cursor")
                if not cursor:
                    break
            found += len(seen & set(ids))
    return load.written, found


def summary_table(
    doc: dict[str, Any], load: WriteLoad, engine: str, read_back: tuple[int, int],
    timings: dict[str, float],
) -> Table:  # fmt: skip
    tables = (doc.get("verification") or {}).get("tables") or {}
    table = Table(title="liteshift demo: summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    for name, item in sorted(tables.items()):
        if item.get("rows"):
            table.add_row(f"rows verified: {name}", str(item["rows"]))
    table.add_row(
        "checksums ok", f"{sum(bool(t.get('ok')) for t in tables.values())}/{len(tables)}"
    )
    table.add_row("write pause", f"{float(doc.get('write_pause_ms') or 0):.1f} ms")
    table.add_row("catch-up passes", str(doc.get("catchup_passes")))
    table.add_row("engine now", engine)
    table.add_row("writes acknowledged", str(read_back[0]))
    table.add_row("acknowledged writes read back from Postgres", str(read_back[1]))
    table.add_row("failed requests", str(len(load.failures)))
    for label, seconds in timings.items():
        table.add_row(label, f"{seconds:.1f} s")
    return table


def run_demo(
    console: Console, workdir: Path, *, writers: int, thresholds: Thresholds, budget: float
) -> Table:
    """The whole demo in `workdir`; returns the summary table. Raises DemoFailed."""
    begun = time.monotonic()
    deadline = begun + budget
    with contextlib.ExitStack() as stack:
        console.print("[bold]1.[/] a throwaway Postgres, the sidecar on SQLite, Prometheus")
        try:
            postgres: PostgresServer = start_postgres()
            stack.callback(postgres.stop)
            dsn = postgres.create_database("liteshift_demo")
            sidecar = stack.enter_context(running_sidecar(workdir))
            prometheus = start_prometheus([sidecar.url.removeprefix("http://")])
            stack.callback(prometheus.stop)
        except (LocalServerError, OSError) as exc:
            # A missing binary (Postgres, Prometheus, runuser) is a setup problem: one line.
            raise DemoFailed(
                f"{exc} (scripts/bootstrap.sh demo installs what the demo needs)"
            ) from None
        console.print(
            f"   sidecar {sidecar.url} over {workdir / 'demo.db'}; Prometheus {prometheus.url}"
        )
        console.print(
            f"[bold]2.[/] {writers} HTTP writers; the criteria must hold for"
            f" {thresholds.window_seconds:g}s"
        )
        load = WriteLoad(sidecar.url, sidecar.api_token, writers)
        load.start()
        stack.callback(load.finish)
        decision, waited = _wait_for_promote(console, prometheus, thresholds, load, deadline)
        console.print(f"   [green]promote[/]: {decision.message}")
        console.print("[bold]3.[/] online promotion while the writers keep writing")
        doc, promoting = _promote(console, sidecar, dsn, load, deadline)
        console.print(
            f"   [green]Promoted[/]: write pause {float(doc.get('write_pause_ms') or 0):.1f} ms"
        )
        time.sleep(AFTER_CUTOVER_SECONDS)
        load.finish()
        with sidecar.admin() as admin:
            engine = str(admin.get("/admin/status").json().get("engine"))
        read_back = _read_back(sidecar, load)
        timings = {
            "load until the criteria said promote": waited,
            "promotion (copy, catch-up, verify, cutover)": promoting,
            "whole demo": time.monotonic() - begun,
        }
        summary = summary_table(doc, load, engine, read_back, timings)
    problems = []
    if load.failures:
        problems.append(f"{len(load.failures)} failed requests, first: {load.failures[0]}")
    if engine != "postgres":
        problems.append(f"the sidecar serves from {engine}, not postgres")
    if read_back[0] != read_back[1]:
        problems.append(f"only {read_back[1]} of {read_back[0]} acknowledged writes read back")
    tables = (doc.get("verification") or {}).get("tables") or {}
    if not tables or not all(t.get("ok") for t in tables.values()):
        problems.append(f"verification not ok: {tables}")
    console.print(summary)
    if problems:
        raise DemoFailed("; ".join(problems))
    return summary


@click.command()
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the SQLite file and the sidecar's log here (default: a temporary directory).",
)
@click.option("--writers", type=click.IntRange(1, 256), default=16, show_default=True,
              help="Concurrent HTTP writers.")  # fmt: skip
@click.option("--lock-wait-p95", type=float, default=0.002, show_default=True,
              help="lockWaitP95 threshold (seconds) the load must stay above.")  # fmt: skip
@click.option("--window", type=float, default=10.0, show_default=True,
              help="Seconds the criterion must hold before the promotion starts.")  # fmt: skip
@click.option("--budget", type=float, default=170.0, show_default=True,
              help="Give up after this many seconds.")  # fmt: skip
def demo(
    workdir: Path | None, writers: int, lock_wait_p95: float, window: float, budget: float
) -> None:
    """Watch SQLite get promoted to Postgres online, on this machine (no cluster needed)."""
    console = Console()
    thresholds = Thresholds(
        lock_wait_p95_seconds=lock_wait_p95,
        write_latency_p99_seconds=None,
        busy_errors_per_second=None,
        database_size_bytes=None,
        window_seconds=window,
        cooldown_seconds=0,
        step_seconds=1.0,
        rate_interval_seconds=5.0,
    )
    if workdir is None:
        scratch = Path(tempfile.mkdtemp(prefix="liteshift-demo-"))
        try:
            run_demo(console, scratch, writers=writers, thresholds=thresholds, budget=budget)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "demo.db").exists():
        raise DemoFailed(f"{workdir / 'demo.db'} exists: give an empty --dir")
    run_demo(console, workdir, writers=writers, thresholds=thresholds, budget=budget)
