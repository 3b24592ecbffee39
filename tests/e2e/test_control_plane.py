"""The control plane itself: ready, RBAC on, the admin token works, SIGTERM stops it cleanly."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster import controlplane
from tests.e2e.kube import Kubectl, wait_for

pytestmark = pytest.mark.e2e


def test_ready_with_rbac_and_the_admin_identity(
    control_plane: controlplane.ControlPlane, kubectl: Kubectl
) -> None:
    assert control_plane.server.startswith("https://127.0.0.1:")
    assert kubectl.run("get", "--raw", "/readyz").stdout.strip() == "ok"
    whoami = kubectl.json("auth", "whoami")
    assert whoami["status"]["userInfo"]["username"] == "admin"
    assert "system:masters" in whoami["status"]["userInfo"]["groups"]
    groups = kubectl.run("api-versions").stdout.split()
    assert "rbac.authorization.k8s.io/v1" in groups
    # Anonymous users may read health but nothing else: the RBAC authorizer is in charge.
    assert anonymous_get(control_plane, "/readyz") == (200, "ok")
    status, body = anonymous_get(control_plane, "/api/v1/namespaces")
    assert status == 403
    assert 'User \\"system:anonymous\\" cannot list resource \\"namespaces\\"' in body


def anonymous_get(plane: controlplane.ControlPlane, path: str) -> tuple[int, str]:
    """GET without credentials, verifying the server against the run's CA."""
    try:
        with urllib.request.urlopen(
            plane.server + path, timeout=10, context=plane.ssl_context()
        ) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_controller_manager_created_the_default_service_account(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    wait_for(
        lambda: any(
            sa.metadata.name == "default"
            for sa in core.list_namespaced_service_account(namespace).items
        ),
        30,
        "the serviceaccount controller to create `default` in a new namespace",
    )


def test_sigterm_stops_a_second_control_plane_cleanly(
    control_plane: controlplane.ControlPlane, tmp_path: Path
) -> None:
    # The session's control plane proves the binary builds; a second one on its own ports and
    # data directory shows start-up and a clean stop without disturbing the first.
    second = controlplane.start(controlplane.BINARY, tmp_path / "second")
    assert second.server != control_plane.server
    code = second.stop(timeout=60, remove=False)
    assert code == 0, second.log_tail()
    assert "cluster: stopping" in second.log.read_text()
