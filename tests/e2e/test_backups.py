"""Scheduled backups against the real control plane: the chart's operator (its RBAC, its
ServiceAccount) reads the admin token from a real Secret, calls a real `liteshift serve` on
loopback (LITESHIFT_SIDECAR_URL, the out-of-cluster setting: no kubelet runs the sidecar Pod)
and writes status the real API server accepts without pruning.

The schedule is `* * * * *` on real time, anchored at the Datastore's creationTimestamp: the
first backup comes within about a minute.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from liteshift.backup import list_backups
from tests.e2e.kube import Kubectl, wait_for
from tests.e2e.test_operator import Operator, event_reasons, get_datastore
from tests.e2e.test_operator import operator as operator  # noqa: PLC0414 - the fixture
from tests.operator.sidecar_process import ADMIN_TOKEN, API_TOKEN, SidecarProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def sidecar_for_operator(
    tmp_path: Path, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SidecarProcess]:
    """A sidecar on loopback; the operator (started after this fixture) is pointed at it."""
    process = SidecarProcess(tmp_path, "shop", namespace)
    process.start()
    monkeypatch.setenv("LITESHIFT_SIDECAR_URL", process.url)
    try:
        yield process
    finally:
        process.stop()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_scheduled_backup_reaches_status_on_a_real_api_server(
    sidecar_for_operator: SidecarProcess,
    operator: Operator,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "shop-tokens", "namespace": namespace},
        "data": {"api-token": b64(API_TOKEN), "admin-token": b64(ADMIN_TOKEN)},
    }
    datastore = {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": "shop", "namespace": namespace},
        "spec": {
            "auth": {"secretRef": {"name": "shop-tokens"}},
            "backup": {"schedule": "* * * * *", "retention": {"keepLast": 1}},
        },
    }
    kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump_all([secret, datastore]))

    def backed_up() -> bool:
        found = get_datastore(api_client, namespace, "shop") or {}
        return "succeeded" in ((found.get("status") or {}).get("lastBackup") or {})

    wait_for(backed_up, 150, lambda: f"a scheduled backup\n{operator.log_text()[-3000:]}")
    live = get_datastore(api_client, namespace, "shop")
    assert live is not None
    last = live["status"]["lastBackup"]
    assert last["succeeded"] is True, (last, operator.log_text()[-3000:])
    # Everything the operator wrote survived the API server's schema (nothing pruned).
    assert set(last) == {
        "name", "trigger", "engine", "succeeded", "startedAt", "completedAt", "sizeBytes",
        "sha256", "location", "message",
    }  # fmt: skip
    assert {"lastSuccessfulAt", "nextScheduledAt", "consecutiveFailures", "retained"} <= set(
        live["status"]["backups"]
    )
    healthy = [c for c in live["status"]["conditions"] if c["type"] == "BackupsHealthy"]
    assert [(c["status"], c["reason"]) for c in healthy] == [("True", "BackupSucceeded")]
    # kopf posts Events from a queue: they may land after the status patch.
    wait_for(
        lambda: "BackupSucceeded" in event_reasons(api_client, namespace, "shop"),
        30,
        "the BackupSucceeded Event",
    )
    on_disk = list_backups(sidecar_for_operator.backup_dir)
    assert [e.name for e in on_disk] == [last["name"]]
    assert on_disk[0].manifest is not None
    assert on_disk[0].manifest.sha256 == last["sha256"]
