"""The metrics contract: every DESIGN.md name, `datastore`/`namespace` on every series."""

from __future__ import annotations

import random
import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from liteshift.sidecar.metrics import LATENCY_BUCKETS, PROMOTION_STATES, Metrics
from liteshift.store.models import OpSample
from tests.sidecar.conftest import API

CONTRACT = {
    "liteshift_lock_wait_seconds": "histogram",
    "liteshift_query_duration_seconds": "histogram",
    "liteshift_writes": "counter",
    "liteshift_busy_errors": "counter",
    "liteshift_database_size_bytes": "gauge",
    "liteshift_wal_size_bytes": "gauge",
    "liteshift_engine_info": "gauge",
    "liteshift_backup_last_success_timestamp_seconds": "gauge",
    "liteshift_promotion_state": "gauge",
    "liteshift_cross_store_write_failures": "counter",
}


def _families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_endpoint_exports_the_contract(client: httpx.Client) -> None:
    for i in range(3):
        made = client.post(
            "/v1/messages",
            headers=API,
            json={"conversation_id": "c", "role": "r", "content": str(i)},
        )
        assert made.status_code == 201
        assert client.get(f"/v1/messages/{made.json()['id']}", headers=API).status_code == 200
    response = client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    for name, kind in CONTRACT.items():
        assert name in families, name
        assert families[name].type == kind, name
        for sample in families[name].samples:
            assert sample.labels["datastore"] == "ds-test", sample
            assert sample.labels["namespace"] == "ns-test", sample
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    base = (("datastore", "ds-test"), ("namespace", "ns-test"))
    assert samples[("liteshift_writes_total", base)] == 3
    assert samples[("liteshift_lock_wait_seconds_count", base)] == 3
    assert samples[("liteshift_busy_errors_total", base)] == 0
    write_count = (
        "liteshift_query_duration_seconds_count",
        tuple(sorted((*base, ("op", "create_message"), ("kind", "write")))),
    )
    read_count = (
        "liteshift_query_duration_seconds_count",
        tuple(sorted((*base, ("op", "get_message"), ("kind", "read")))),
    )
    assert samples[write_count] == 3 and samples[read_count] == 3
    engines = {dict(s.labels)["engine"]: s.value for s in families["liteshift_engine_info"].samples}
    status = client.get(
        "/admin/status", headers={"Authorization": "Bearer admin-token-for-tests-9876543210"}
    ).json()
    assert engines[status["engine"]] == 1 and sum(engines.values()) == 1
    assert samples[("liteshift_database_size_bytes", base)] > 0


def test_observer_and_setters_update_series() -> None:
    metrics = Metrics("d", "n")
    metrics.observe(OpSample("create_event", "write", 0.002, 0.0007, 2, True))
    metrics.observe(OpSample("create_event", "write", 0.002, 0.0001, 0, False))
    metrics.observe(OpSample("list_events", "read", 0.0003, 0.0, 1, True))
    metrics.backup_succeeded(1700000000.0)
    metrics.set_promotion_state("Copying")
    text = metrics.exposition().decode()
    assert 'liteshift_writes_total{datastore="d",namespace="n"} 1.0' in text
    assert 'liteshift_busy_errors_total{datastore="d",namespace="n"} 3.0' in text
    assert 'liteshift_lock_wait_seconds_bucket{datastore="d",le="0.001",namespace="n"} 2.0' in text
    assert 'liteshift_lock_wait_seconds_bucket{datastore="d",le="0.0005",namespace="n"} 1.0' in text
    assert (
        'liteshift_backup_last_success_timestamp_seconds{datastore="d",namespace="n"} 1.7e+09'
        in text
    )
    state = PROMOTION_STATES.index("Copying")
    assert f'liteshift_promotion_state{{datastore="d",namespace="n"}} {float(state)}' in text


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics("a", "n"), Metrics("b", "n")
    first.observe(OpSample("append_event", "write", 0.001, 0.0, 0, True))
    assert 'datastore="b"' not in first.exposition().decode()
    assert 'liteshift_writes_total{datastore="b",namespace="n"} 0.0' in second.exposition().decode()


def test_operation_histograms_match_prometheus_clients_own_histogram() -> None:
    """The hand-kept histograms expose what prometheus_client's Histogram would for the same
    observations: bucket edges (a value on a bound counts in that bucket), +Inf, count, sum.
    More samples than FOLD_AT: some are counted while observing, the rest at the scrape."""
    rng = random.Random(7)
    values = [*LATENCY_BUCKETS, 0.0, 11.0, 1e-9] + [rng.uniform(0, 0.02) for _ in range(2500)]
    metrics = Metrics("d", "n")
    oracle_registry = CollectorRegistry()
    oracle = Histogram(
        "liteshift_query_duration_seconds",
        "oracle",
        ("datastore", "namespace", "op", "kind"),
        buckets=LATENCY_BUCKETS,
        registry=oracle_registry,
    ).labels("d", "n", "get_message", "read")
    for value in values:
        metrics.observe(OpSample("get_message", "read", value, 0.0, 0, True))
        oracle.observe(value)

    def series(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text)
            if f.name == "liteshift_query_duration_seconds"
            for s in f.samples
            if not s.name.endswith("_created")
        }

    ours = series(metrics.exposition().decode())
    theirs = series(generate_latest(oracle_registry).decode())
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value), key


def test_samples_observed_from_many_threads_are_all_counted_and_the_queue_stays_bounded() -> None:
    metrics = Metrics("d", "n")
    operations = metrics._operations
    per_thread, threads = 3000, 8
    start = threading.Barrier(threads)
    longest = [0] * threads

    def observe(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            metrics.observe(OpSample("append_event", "write", 0.001, 0.0002, 0, i % 3 != 0))
            longest[n] = max(longest[n], len(operations._pending))

    workers = [threading.Thread(target=observe, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    # Each thread folds once it sees FOLD_AT queued; the others may add one sample each meanwhile.
    assert max(longest) <= operations.FOLD_AT + threads
    text = metrics.exposition().decode()
    total = per_thread * threads
    ok = threads * sum(1 for i in range(per_thread) if i % 3 != 0)
    assert f'liteshift_writes_total{{datastore="d",namespace="n"}} {float(ok)}' in text
    count = (
        'liteshift_query_duration_seconds_count{datastore="d",kind="write",namespace="n",'
        f'op="append_event"}} {float(total)}'
    )
    assert count in text
    assert (
        f'liteshift_lock_wait_seconds_count{{datastore="d",namespace="n"}} {float(total)}' in text
    )
    assert not operations._pending
