"""A throwaway Prometheus on loopback, from the Debian `prometheus` binary.

Used by the sidecar's metrics tests, the promotion engine's tests and the demo: it scrapes the
given targets every `scrape_interval` and answers PromQL through its HTTP API. Its TSDB lives in
a temporary directory removed by `stop()`.

Like the throwaway Postgres, it never outlives the process that started it
(`liteshift.local.owner`): a watchdog ends it when that process dies, even by SIGKILL, and
every start ends those whose owner is dead.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from liteshift.local import owner
from liteshift.local.errors import LocalServerError
from liteshift.local.ports import free_port

DEFAULT_BINARY = "/usr/bin/prometheus"
DIR_PREFIX = "liteshift-prom-"
PID_FILE = "prometheus.pid"


@dataclass
class PrometheusServer:
    """One running throwaway Prometheus; `stop()` ends it and removes its data."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    watchdog: owner.Watchdog | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Evaluate an instant PromQL query; return the result list (vector or matrix items)."""
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise LocalServerError(
                "prometheus", f"query {promql!r} failed: {body.get('error', response.text)}"
            )
        result = body["data"]["result"]
        # Scalars and strings come back as a bare [ts, value] pair: wrap them like a sample.
        if body["data"]["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        assert isinstance(result, list)
        return result

    def wait_for(self, promql: str, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll `promql` until it returns a non-empty result; raise after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if result:
                return result
            if time.monotonic() > deadline:
                raise LocalServerError("prometheus", f"no data for {promql!r} after {timeout}s")
            time.sleep(0.25)

    def targets(self) -> list[dict[str, Any]]:
        """The active scrape targets with their health (`up`, `down`, `unknown`)."""
        body = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()
        active = body["data"]["activeTargets"]
        assert isinstance(active, list)
        return active

    def stop(self) -> None:
        """Terminate the server and delete its data directory."""
        if self.watchdog is not None:
            self.watchdog.disarm()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_config(
    path: Path,
    targets: list[str],
    *,
    scrape_interval: str,
    metrics_path: str,
    bearer_token: str | None,
) -> None:
    """Write a prometheus.yml scraping `targets` (host:port) as one job named `liteshift`."""
    job: dict[str, Any] = {
        "job_name": "liteshift",
        "metrics_path": metrics_path,
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_interval,
        "static_configs": [{"targets": targets}],
    }
    if bearer_token:
        job["authorization"] = {"type": "Bearer", "credentials": bearer_token}
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [job],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _ours(pid: int, workdir: Path) -> bool:
    # The pid file may name a pid reused since: only a process started on this workdir is ours.
    try:
        return str(workdir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def reap_orphans() -> list[Path]:
    """End and delete every throwaway Prometheus whose owner process is dead; return their dirs."""
    reaped = owner.orphans(DIR_PREFIX)
    for workdir in reaped:
        with contextlib.suppress(OSError, ValueError):
            pid = int((workdir / PID_FILE).read_text())
            if _ours(pid, workdir):
                os.kill(pid, signal.SIGKILL)  # a throwaway TSDB: nothing to shut down cleanly
        shutil.rmtree(workdir, ignore_errors=True)
    return reaped


def _kill_script(pid: int, workdir: Path) -> str:
    quoted = shlex.quote(str(workdir))
    return (
        f"if grep -qaF -- {quoted} /proc/{pid}/cmdline 2>/dev/null; then kill -9 {pid}; fi; "
        f"rm -rf -- {quoted}"
    )


def start_prometheus(
    targets: list[str],
    *,
    scrape_interval: str = "1s",
    metrics_path: str = "/metrics",
    bearer_token: str | None = None,
    binary: str = DEFAULT_BINARY,
    ready_timeout: float = 30.0,
) -> PrometheusServer:
    """Start Prometheus on a free loopback port scraping `targets`; return once it is ready."""
    if not Path(binary).exists() and shutil.which(binary) is None:
        raise LocalServerError("prometheus", f"{binary} not found (Debian package `prometheus`)")
    reap_orphans()
    workdir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    owner.write_owner(workdir)
    config = workdir / "prometheus.yml"
    write_config(
        config,
        targets,
        scrape_interval=scrape_interval,
        metrics_path=metrics_path,
        bearer_token=bearer_token,
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    log.close()
    (workdir / PID_FILE).write_text(str(process.pid))
    server = PrometheusServer(
        port=port,
        workdir=workdir,
        process=process,
        watchdog=owner.start_watchdog(_kill_script(process.pid, workdir)),
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = (workdir / "prometheus.log").read_text(errors="replace")[-2000:]
            server.stop()
            raise LocalServerError("prometheus", f"exited with {process.returncode}: {tail}")
        try:
            if httpx.get(f"{server.url}/-/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise LocalServerError("prometheus", f"not ready after {ready_timeout}s")
