"""The throwaway Prometheus harness: the real Debian binary scraping a real HTTP target."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from liteshift.local.errors import LocalServerError
from liteshift.local.owner import owner_alive, process_alive
from liteshift.local.prometheus import start_prometheus


class _Exporter(BaseHTTPRequestHandler):
    seen_auth: list[str] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization", ""))
        body = b"# TYPE harness_answer gauge\nharness_answer 42\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_scrapes_target_and_answers_promql(exporter: str) -> None:
    with start_prometheus([exporter], bearer_token="s3cret") as prom:
        result = prom.wait_for("harness_answer", timeout=30)
        assert result[0]["value"][1] == "42"
        assert result[0]["metric"]["job"] == "liteshift"
        assert [t["health"] for t in prom.targets()] == ["up"]
        assert "Bearer s3cret" in _Exporter.seen_auth
        assert prom.query("1 + 1")[0]["value"][1] == "2"
        workdir = prom.workdir
    assert not workdir.exists()


def test_bad_promql_is_a_typed_error(exporter: str) -> None:
    with start_prometheus([exporter]) as prom, pytest.raises(LocalServerError, match="failed"):
        prom.query("sum(")


def test_missing_binary_is_a_typed_error() -> None:
    with pytest.raises(LocalServerError, match="not found"):
        start_prometheus(["127.0.0.1:1"], binary="/nonexistent/prometheus")


# --- a server never outlives its owner ------------------------------------------------------

OWNER = """
import json, time
from liteshift.local.prometheus import start_prometheus
server = start_prometheus([])
assert server.watchdog is not None
print(json.dumps({"workdir": str(server.workdir), "pid": server.process.pid,
                  "watchdog": server.watchdog.process.pid}), flush=True)
time.sleep(600)
"""


def _start_owner() -> tuple[subprocess.Popen[str], Path, int, int]:
    process = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the owner exited with {process.wait()}"
    started = json.loads(line)
    assert process_alive(int(started["pid"]))
    return process, Path(started["workdir"]), int(started["pid"]), int(started["watchdog"])


def _sigkill(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def _gone(pid: int, workdir: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid) and not workdir.exists():
            return True
        time.sleep(0.1)
    return False


def test_a_sigkilled_owner_takes_its_prometheus_along() -> None:
    process, workdir, pid, _ = _start_owner()
    _sigkill(process)
    assert _gone(pid, workdir, 30), f"prometheus {pid} or {workdir} survived its owner"


def test_the_next_start_reaps_a_prometheus_whose_owner_and_watchdog_died() -> None:
    process, workdir, pid, watchdog = _start_owner()
    os.killpg(watchdog, signal.SIGKILL)
    _sigkill(process)
    time.sleep(0.5)
    assert process_alive(pid) and owner_alive(workdir) is False  # an orphan
    with start_prometheus([]) as server:
        assert _gone(pid, workdir, 10)
        assert server.watchdog is not None and server.watchdog.process.poll() is None
    assert server.watchdog.process.returncode is not None and not server.workdir.exists()
