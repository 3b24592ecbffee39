"""A real Prometheus (Debian binary) scrapes a real sidecar: every DESIGN.md metric has data."""

from __future__ import annotations

from urllib.parse import urlparse

import httpx
import pytest

from liteshift.local.prometheus import start_prometheus
from tests.sidecar.conftest import API, LiveServer

QUERIES = [
    "histogram_quantile(0.95, sum by (le) (rate(liteshift_lock_wait_seconds_bucket[1m])))",
    'liteshift_lock_wait_seconds_count{datastore="ds-test",namespace="ns-test"}',
    'liteshift_query_duration_seconds_count{op="create_message",kind="write"}',
    'liteshift_query_duration_seconds_count{op="get_message",kind="read"}',
    "liteshift_writes_total > 0",
    "liteshift_busy_errors_total",
    "liteshift_database_size_bytes > 0",
    "liteshift_wal_size_bytes",
    'liteshift_engine_info{engine=~"sqlite|postgres"} == 1',
    "liteshift_backup_last_success_timestamp_seconds",
    "liteshift_promotion_state",
    "liteshift_cross_store_write_failures_total",
]


@pytest.mark.slow
def test_prometheus_scrapes_every_contract_metric(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, headers=API) as http:
        for i in range(20):
            made = http.post(
                "/v1/messages", json={"conversation_id": "c", "role": "r", "content": str(i)}
            )
            assert made.status_code == 201
            assert http.get(f"/v1/messages/{made.json()['id']}").status_code == 200
    target = urlparse(live_server.url).netloc
    with start_prometheus([target], scrape_interval="1s") as prom:
        # Two scrapes are needed before rate() has data; keep writing in between.
        prom.wait_for("liteshift_writes_total", timeout=30)
        with httpx.Client(base_url=live_server.url, headers=API) as http:
            for i in range(20):
                http.post(
                    "/v1/messages",
                    json={"conversation_id": "c", "role": "r", "content": f"more {i}"},
                )
        for query in QUERIES:
            result = prom.wait_for(query, timeout=30)
            for series in result:
                labels = series["metric"]
                if "__name__" in labels:
                    assert labels["datastore"] == "ds-test", (query, labels)
                    assert labels["namespace"] == "ns-test", (query, labels)
        assert [t["health"] for t in prom.targets()] == ["up"]
