"""Operator tests: `bare_cluster` is kmock's emulator; `cluster` adds kopf (see cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.operator.cluster import Cluster, running_emulator, running_operator


@pytest.fixture
def bare_cluster() -> Iterator[Cluster]:
    """A running emulator and no operator (a test starts its own)."""
    with running_emulator() as cluster:
        yield cluster


@pytest.fixture
def cluster(bare_cluster: Cluster) -> Iterator[Cluster]:
    """A running emulator with the operator watching it; stopped cleanly after the test."""
    with running_operator(bare_cluster.url):
        yield bare_cluster
