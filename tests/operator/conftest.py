"""Operator tests: the `cluster` fixture runs kopf against kmock's emulator (see cluster.py)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import kmock
import kopf
import pytest

from liteshift.operator.handlers.runtime import MEMO_KEY, Runtime
from liteshift.operator.kube import Kube
from tests.operator.cluster import NAMESPACE, RESOURCES, Cluster, Emulator, settings_for_tests


@contextlib.contextmanager
def running_emulator(with_operator: bool) -> Iterator[Cluster]:
    """The emulator on a loopback port, and kopf watching it when `with_operator`."""
    started = threading.Event()
    ready = threading.Event()
    stop = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            for resource, info in RESOURCES.items():
                emulator.resources[resource] = info
            url = str(server.url).rstrip("/")
            box.update(url=url, emulator=emulator)
            started.set()
            if not with_operator:
                ready.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                return
            runtime = Runtime(
                kube=Kube.from_url(url),
                drift_interval=1.0,
                connection=kopf.ConnectionInfo(server=url, default_namespace=NAMESPACE),
            )
            await kopf.operator(
                registry=kopf.get_default_registry(),
                settings=settings_for_tests(),
                standalone=True,
                clusterwide=True,
                memo=kopf.Memo({MEMO_KEY: runtime}),
                stop_flag=stop,
                ready_flag=ready,
            )

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced in the test thread below
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=run, name="emulator-under-test", daemon=True)
    thread.start()
    assert started.wait(20), "the emulator did not start"
    if "error" in box:
        raise box["error"]
    if not ready.wait(20):
        stop.set()
        thread.join(10)
        raise AssertionError(f"kopf did not become ready: {box.get('error')!r}")
    cluster = Cluster(box["url"], box["emulator"])
    try:
        yield cluster
    finally:
        cluster.close()
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "the emulator (or kopf) did not stop within 30 s"
    if "error" in box:
        raise box["error"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A running emulator with the operator watching it; stopped cleanly after the test."""
    with running_emulator(with_operator=True) as running:
        yield running


@pytest.fixture
def bare_cluster() -> Iterator[Cluster]:
    """A running emulator and no operator (a test starts its own, e.g. `liteshift operator`)."""
    with running_emulator(with_operator=False) as running:
        yield running
