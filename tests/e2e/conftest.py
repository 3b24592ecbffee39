"""Fixtures for the end-to-end tests: a real Kubernetes control plane built from source.

The session builds tests/cluster with `go build` (cold: minutes; cached: seconds), starts it
once, and hands the tests its kubeconfig, a `kubernetes` client, a `kubectl` runner and a fresh
namespace each. A build or start failure FAILS every e2e test with the reason; nothing skips.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.cluster import controlplane
from tests.e2e.kube import Kubectl

ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = ROOT / "crds"
KUBECTL = Path(sys.executable).parent / "kubectl"
# `make test` builds the control plane before pytest starts; run bare on a fresh machine, the
# first e2e test's setup includes the cold build (~11 min on 2 cores), longer than the suite's
# 600 s per-test timeout. E2E tests bound their own waits, so this only lifts that backstop.
E2E_TIMEOUT = controlplane.BUILD_TIMEOUT + 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("e2e") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """The running control plane (etcd + kube-apiserver + kube-controller-manager)."""
    try:
        built = controlplane.build()
        plane = controlplane.start(built.binary, tmp_path_factory.mktemp("cluster"))
    except controlplane.ControlPlaneError as exc:
        pytest.fail(f"e2e control plane: {exc}", pytrace=False)
    sys.stderr.write(f"\ne2e control plane: go build {built.seconds:.1f}s; ")
    sys.stderr.write(controlplane.describe(plane) + "\n")
    try:
        yield plane
    finally:
        code = plane.stop()
        if code != 0:
            raise controlplane.ControlPlaneError(f"control plane exited {code} on SIGTERM")


@pytest.fixture(scope="session")
def kubeconfig(control_plane: controlplane.ControlPlane) -> Path:
    """Path of the admin kubeconfig (user `admin`, group system:masters)."""
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    """`kubectl` as the admin; fails (not skips) when the binary is missing."""
    if not KUBECTL.is_file():
        pytest.fail(f"no kubectl at {KUBECTL}: run scripts/bootstrap.sh", pytrace=False)
    return Kubectl(KUBECTL, kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """A `kubernetes` ApiClient logged in as the admin."""
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> list[str]:
    """The project's CRDs from crds/, applied with `kubectl apply` and Established."""
    files = sorted(CRDS_DIR.glob("*.yaml"))
    if not files:
        pytest.fail(f"no CRDs in {CRDS_DIR}", pytrace=False)
    kubectl.run("apply", "-f", str(CRDS_DIR))
    names = [item["metadata"]["name"] for item in kubectl.json("get", "-f", str(CRDS_DIR))["items"]]
    kubectl.run(
        "wait", "--for=condition=Established", "--timeout=60s", *[f"crd/{n}" for n in names]
    )
    return names


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)
