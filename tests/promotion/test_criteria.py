"""Criteria against a REAL Prometheus scraping a real prometheus_client exporter we drive.

One Prometheus and one exporter for the module; each test reads its own `datastore` label,
whose series the driver thread shapes over time (a sustained breach, a calm store, a spike
shorter than the window, a value hovering just under the threshold).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from liteshift.local.ports import free_port
from liteshift.local.prometheus import PrometheusServer, start_prometheus
from liteshift.promotion.criteria import (
    Action,
    Previous,
    Request,
    Target,
    evaluate,
    sustained_over,
)
from liteshift.promotion.prometheus import PrometheusAPI
from liteshift.promotion.thresholds import Thresholds

NS = "default"
WINDOW = 8.0
THRESHOLDS = Thresholds(
    lock_wait_p95_seconds=0.05,
    write_latency_p99_seconds=0.25,
    busy_errors_per_second=5.0,
    database_size_bytes=1000,
    window_seconds=WINDOW,
    cooldown_seconds=60.0,
    step_seconds=1.0,
    rate_interval_seconds=5.0,
    hysteresis=0.1,
)
# Sizes per store: hot is far above, hover sits between the hysteresis bar (900) and 1000.
SIZES = {"hot": 500, "calm": 500, "spike": 500, "hover": 950}


@dataclass
class Exporter:
    started: float
    prometheus: PrometheusServer
    api: PrometheusAPI

    def wait_until(self, seconds_after_start: float) -> None:
        delay = self.started + seconds_after_start - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def _drive(registry: CollectorRegistry, stop: threading.Event, started: float) -> None:
    labels = ("datastore", "namespace")
    lock = Histogram(
        "liteshift_lock_wait_seconds",
        "time waiting for the writer",
        labels,
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    query = Histogram(
        "liteshift_query_duration_seconds",
        "query duration",
        (*labels, "op", "kind"),
        buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        registry=registry,
    )
    busy = Counter("liteshift_busy_errors", "SQLITE_BUSY seen", labels, registry=registry)
    size = Gauge("liteshift_database_size_bytes", "database size", labels, registry=registry)
    for name in SIZES:
        busy.labels(name, NS).inc(0)
    while not stop.is_set():
        elapsed = time.monotonic() - started
        for name, base in SIZES.items():
            wait = 0.4 if name == "hot" else 0.002
            lock.labels(name, NS).observe(wait)
            query.labels(name, NS, "create_message", "write").observe(wait + 0.001)
            value = base
            # The spike: 1.5 s above the threshold every 4 s, always shorter than the window.
            if name == "spike" and elapsed % 4.0 < 1.5:
                value = 5000
            size.labels(name, NS).set(value)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()
    started = time.monotonic()
    driver = threading.Thread(target=_drive, args=(registry, stop, started), daemon=True)
    driver.start()
    prometheus = start_prometheus([f"127.0.0.1:{port}"], scrape_interval="1s")
    try:
        prometheus.wait_for('liteshift_database_size_bytes{datastore="hot"}')
        yield Exporter(time.monotonic(), prometheus, PrometheusAPI(prometheus.url))
    finally:
        prometheus.stop()
        stop.set()
        driver.join(timeout=5)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _full_window(exporter: Exporter) -> None:
    # Window + rate interval + two scrapes of margin: every step of the window has data.
    exporter.wait_until(WINDOW + THRESHOLDS.rate_interval_seconds + 3.0)


def test_sustained_breach_promotes_under_auto_and_recommends_under_manual(
    exporter: Exporter,
) -> None:
    _full_window(exporter)
    target = Target("hot", NS)
    decision = evaluate(target, Request(policy="auto"), THRESHOLDS, exporter.api)
    assert decision.metrics_available is True, decision.metrics_message
    assert decision.action is Action.PROMOTE
    assert decision.trigger == "criteria"
    lock = decision.criterion("lockWaitP95")
    assert lock.sustained and lock.met
    assert lock.observed is not None and 0.25 <= lock.observed <= 0.5
    assert decision.criterion("writeLatencyP99").sustained
    assert not decision.criterion("databaseSize").sustained
    status = lock.to_status()
    assert status["name"] == "lockWaitP95" and status["threshold"] == 0.05
    assert "liteshift_lock_wait_seconds_bucket" in status["query"]
    assert decision.metrics_condition()["status"] == "True"

    manual = evaluate(target, Request(policy="manual"), THRESHOLDS, exporter.api)
    assert manual.action is Action.RECOMMEND
    assert "liteshift.io/promote=now" in manual.message


def test_calm_store_does_not_promote(exporter: Exporter) -> None:
    _full_window(exporter)
    decision = evaluate(Target("calm", NS), Request(policy="auto"), THRESHOLDS, exporter.api)
    assert decision.metrics_available is True
    assert decision.action is Action.NONE
    assert decision.reason == "NoCriterionSustained"
    assert not any(c.sustained for c in decision.criteria)


def test_spike_shorter_than_the_window_never_promotes(exporter: Exporter) -> None:
    _full_window(exporter)
    target = Target("spike", NS)
    # The spike is really there: Prometheus saw the size above the threshold in the window.
    peak = exporter.prometheus.query(
        f'max_over_time(liteshift_database_size_bytes{{datastore="spike"}}[{int(WINDOW)}s])'
    )
    assert float(peak[0]["value"][1]) > 1000
    for _ in range(3):
        decision = evaluate(target, Request(policy="auto"), THRESHOLDS, exporter.api)
        assert decision.metrics_available is True
        assert decision.action is Action.NONE
        assert not decision.criterion("databaseSize").sustained
        time.sleep(1.0)


def test_hysteresis_keeps_a_sustained_criterion_just_under_the_threshold(
    exporter: Exporter,
) -> None:
    _full_window(exporter)
    target = Target("hover", NS)
    fresh = evaluate(target, Request(policy="auto"), THRESHOLDS, exporter.api)
    assert not fresh.criterion("databaseSize").sustained
    assert fresh.action is Action.NONE
    held = evaluate(
        target,
        Request(policy="auto"),
        THRESHOLDS,
        exporter.api,
        previous=Previous(sustained=frozenset({"databaseSize"})),
    )
    assert held.criterion("databaseSize").sustained
    assert held.action is Action.PROMOTE


def test_policy_off_never_promotes(exporter: Exporter) -> None:
    _full_window(exporter)
    for request in (
        Request(policy="off"),
        Request(policy="off", annotations={"liteshift.io/promote": "now"}),
        Request(policy="off", replicas=3),
        Request(policy="off", engine="postgres"),
    ):
        decision = evaluate(Target("hot", NS), request, THRESHOLDS, exporter.api)
        assert decision.action is Action.NONE
        assert decision.reason == "PolicyOff"


def test_no_data_for_the_datastore_means_metrics_unavailable(exporter: Exporter) -> None:
    decision = evaluate(Target("ghost", NS), Request(policy="auto"), THRESHOLDS, exporter.api)
    assert decision.action is Action.NONE
    assert decision.metrics_available is False
    assert decision.metrics_reason == "NoData"
    assert "ghost" in decision.metrics_message
    assert decision.metrics_condition() == {
        "type": "MetricsAvailable",
        "status": "False",
        "reason": "NoData",
        "message": decision.metrics_message,
    }


def test_prometheus_down_means_metrics_unavailable_and_no_promotion() -> None:
    api = PrometheusAPI(f"http://127.0.0.1:{free_port()}", timeout=2)
    decision = evaluate(Target("hot", NS), Request(policy="auto"), THRESHOLDS, api)
    assert decision.action is Action.NONE
    assert decision.metrics_available is False
    assert decision.metrics_reason == "PrometheusUnreachable"
    assert "unreachable" in decision.metrics_message
    # Declared triggers still work without metrics; the unknown metrics are never a guess.
    scaled = evaluate(Target("hot", NS), Request(policy="auto", replicas=3), THRESHOLDS, api)
    assert scaled.action is Action.PROMOTE
    assert scaled.criterion("horizontalScale").sustained
    assert scaled.metrics_available is False


def test_manual_triggers_and_cooldown() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    recent = Previous(decided_at=now - timedelta(seconds=10))
    t = Target("x", NS)

    def decide(request: Request, previous: Previous | None = None) -> tuple[Action, str | None]:
        d = evaluate(t, request, THRESHOLDS, None, now=now, previous=previous)
        return d.action, d.trigger

    assert decide(Request(policy="manual")) == (Action.NONE, None)
    assert decide(Request(policy="manual", engine="postgres")) == (Action.PROMOTE, "engine")
    assert decide(Request(policy="manual", replicas=2)) == (Action.RECOMMEND, "criteria")
    assert decide(Request(policy="auto", replicas=2)) == (Action.PROMOTE, "criteria")
    now_annotation = Request(policy="manual", annotations={"liteshift.io/promote": "now"})
    assert decide(now_annotation) == (Action.PROMOTE, "annotation")
    # Within the cooldown only the explicit annotation promotes.
    assert decide(Request(policy="auto", engine="postgres"), recent) == (Action.NONE, None)
    assert decide(now_annotation, recent) == (Action.PROMOTE, "annotation")


def test_sustained_over_requires_every_step() -> None:
    samples = tuple((float(t), 2.0) for t in range(10, 21))
    assert sustained_over(samples, 1.0, 10, 20, 1) == (True, 10.0)
    gap = tuple(s for s in samples if s[0] != 15.0)
    assert sustained_over(gap, 1.0, 10, 20, 1) == (False, 16.0)
    dip = tuple((t, 0.5 if t == 12.0 else v) for t, v in samples)
    assert sustained_over(dip, 1.0, 10, 20, 1)[0] is False
    nan = tuple((t, float("nan") if t == 20.0 else v) for t, v in samples)
    assert sustained_over(nan, 1.0, 10, 20, 1) == (False, None)
    late = samples[3:]
    assert sustained_over(late, 1.0, 10, 20, 1) == (False, 13.0)
