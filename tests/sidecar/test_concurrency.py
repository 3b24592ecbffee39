"""64 concurrent writers over real HTTP: no busy errors, no 5xx, every acknowledged write kept."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.sidecar.conftest import API, LiveServer, Sidecar

WRITERS = 64
WRITES_EACH = 8


@pytest.mark.slow
def test_64_concurrent_writers(live_server: LiveServer, sidecar: Sidecar) -> None:
    acked: list[str] = []
    failures: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(WRITERS)

    def writer(n: int) -> None:
        with httpx.Client(base_url=live_server.url, headers=API, timeout=60) as http:
            start.wait()
            for i in range(WRITES_EACH):
                response = http.post(
                    "/v1/events",
                    json={"type": "load", "payload": {"writer": n, "i": i}, "subject_id": f"w{n}"},
                )
                with lock:
                    if response.status_code == 201:
                        acked.append(response.json()["id"])
                    else:
                        failures.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(acked) == WRITERS * WRITES_EACH

    stored: set[str] = set()
    cursor = None
    with httpx.Client(base_url=live_server.url, headers=API, timeout=60) as http:
        while True:
            params = {"type": "load", "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/events", params=params).json()
            stored |= {e["id"] for e in page["items"]}
            cursor = page["next_cursor"]
            if cursor is None:
                break
        metrics = http.get("/metrics").text
    assert stored == set(acked)
    assert 'liteshift_busy_errors_total{datastore="ds-test",namespace="ns-test"} 0.0' in metrics
    assert (
        f'liteshift_writes_total{{datastore="ds-test",namespace="ns-test"}} {float(len(acked))}'
        in metrics
    )
