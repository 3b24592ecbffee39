"""The throwaway Prometheus harness: the real Debian binary scraping a real HTTP target."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from liteshift.local.errors import LocalServerError
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
