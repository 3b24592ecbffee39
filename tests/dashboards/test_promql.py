"""Every PromQL expression of the dashboard, against a real Prometheus (the Debian binary).

Fast: each expression parses (Prometheus answers 400 bad_data otherwise). Slow: a real
`liteshift serve` on a SQLite file under write and read load, with one verified backup taken
through its admin API, scraped every second, gives every panel data.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboards.generate import build, expressions
from liteshift.local.errors import LocalServerError
from liteshift.local.prometheus import PrometheusServer, start_prometheus
from tests.dashboards.sidecar import serve

ROOT = Path(__file__).resolve().parents[2]
DATASTORE, NAMESPACE = "notes", "apps"
API_TOKEN = "dashboard-test-api-token-0123456789"
ADMIN_TOKEN = "dashboard-test-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def concrete(expr: str, namespace: str = ".*", datastore: str = ".*") -> str:
    """Substitute what Grafana substitutes before it sends a query."""
    return (
        expr.replace("$__rate_interval", "15s")
        .replace("$namespace", namespace)
        .replace("$datastore", datastore)
    )


def dashboard_expressions() -> list[str]:
    board = json.loads((ROOT / "dashboards" / "liteshift.json").read_text())
    return expressions(board)


@pytest.fixture(scope="module")
def idle_prometheus() -> Iterator[PrometheusServer]:
    with start_prometheus([]) as server:
        yield server


def test_every_expression_parses(idle_prometheus: PrometheusServer) -> None:
    exprs = dashboard_expressions()
    assert len(exprs) >= 12
    for expr in exprs:
        # label_values() is Grafana's variable function: Prometheus sees the selector inside.
        promql = (
            expr.removeprefix("label_values(").rsplit(",", 1)[0]
            if "label_values(" in expr
            else expr
        )
        idle_prometheus.query(concrete(promql))


def test_a_broken_expression_is_refused(idle_prometheus: PrometheusServer) -> None:
    with pytest.raises(LocalServerError, match="parse error"):
        idle_prometheus.query("histogram_quantile(0.95, sum by (le) (rate(x[5m]))")


def test_generated_expressions_are_the_committed_ones() -> None:
    assert dashboard_expressions() == expressions(build())


class Load:
    """Writers and readers hitting the sidecar until stopped."""

    def __init__(self, base: str, threads: int = 4) -> None:
        self.base = base
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.writes = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(threads)]

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=10) as client:
            conversation = str(uuid.uuid4())
            while not self.stop.is_set():
                body = {"conversation_id": conversation, "role": "user", "content": "x" * 200}
                response = client.post("/v1/messages", json=body)
                if response.status_code != 201:
                    self.errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                self.writes += 1
                client.get("/v1/messages", params={"conversation_id": conversation})

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[str]:
    env = {
        "LITESHIFT_DB_URL": f"sqlite:///{tmp_path / 'notes.db'}",
        "LITESHIFT_DATASTORE": DATASTORE,
        "LITESHIFT_NAMESPACE": NAMESPACE,
        "LITESHIFT_API_TOKEN": API_TOKEN,
        "LITESHIFT_ADMIN_TOKEN": ADMIN_TOKEN,
        "LITESHIFT_TOKEN_DIR": str(tmp_path / "tokens"),
        "LITESHIFT_BACKUP_DIR": str(tmp_path / "backups"),
    }
    with serve(tmp_path, env) as base:
        yield base


@pytest.mark.slow
def test_every_panel_has_data_from_a_real_sidecar_under_load(sidecar: str) -> None:
    target = sidecar.removeprefix("http://")
    with start_prometheus([target], scrape_interval="1s") as prometheus, Load(sidecar) as load:
        prometheus.wait_for('up{job="liteshift"} == 1', timeout=30)
        # A verified backup through the admin API sets the gauge the backup-age panel reads.
        backup = httpx.post(f"{sidecar}/admin/backups", json={}, headers=ADMIN, timeout=120)
        assert backup.status_code == 201, backup.text
        results: dict[str, list[dict[str, Any]]] = {}
        for expr in dashboard_expressions():
            if expr.startswith("label_values("):
                selector, label = expr.removeprefix("label_values(").rsplit(",", 1)
                found = prometheus.wait_for(concrete(selector, NAMESPACE, DATASTORE), timeout=30)
                values = {series["metric"][label.strip(" )")] for series in found}
                assert values <= {NAMESPACE, DATASTORE} and values, expr
                continue
            promql = concrete(expr, NAMESPACE, DATASTORE)
            results[expr] = prometheus.wait_for(promql, timeout=30)
        assert not load.errors, load.errors[:3]
        assert load.writes > 50
    age = next(v for k, v in results.items() if "liteshift_backup_last_success" in k)
    assert 0 <= float(age[0]["value"][1]) < 300
    for expr, series in results.items():
        for item in series:
            assert item["metric"].get("datastore") == DATASTORE, expr
            assert item["metric"].get("namespace") == NAMESPACE, expr
        if "histogram_quantile" in expr:
            # Under load the quantiles are real numbers, not NaN from empty buckets.
            assert any(math.isfinite(float(item["value"][1])) for item in series), expr
    engine = next(v for k, v in results.items() if "liteshift_engine_info" in k)
    assert [item["metric"]["engine"] for item in engine] == ["sqlite"]
    writes = next(v for k, v in results.items() if "liteshift_writes_total" in k)
    assert float(writes[0]["value"][1]) > 0
    ops = {item["metric"]["op"] for k, v in results.items() if "op, kind" in k for item in v}
    assert len(ops) >= 2, ops  # at least a write and a read operation
