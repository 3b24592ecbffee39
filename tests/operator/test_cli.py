"""`liteshift operator` as a process: kubeconfig login, liveness endpoint, JSON logs, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from liteshift.local.ports import free_port
from tests.operator.cluster import NAMESPACE, Cluster, wait_for

LITESHIFT = Path(sys.executable).parent / "liteshift"
KOPF = Path(sys.executable).parent / "kopf"


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                "contexts": [
                    {
                        "name": "emulator",
                        "context": {
                            "cluster": "emulator",
                            "user": "tester",
                            "namespace": NAMESPACE,
                        },
                    }
                ],
                "current-context": "emulator",
            }
        )
    )
    return path


def _live(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "liteshift-operator": lambda liveness: [str(LITESHIFT), "operator", "--liveness", liveness],
    # The kopf way, with the handlers module alone: the startup handler builds the client.
    "kopf-run": lambda liveness: [
        str(KOPF),
        "run",
        "-m",
        "liteshift.operator.handlers",
        "--standalone",
        "-A",
        "--liveness",
        liveness,
        "--log-format",
        "json",
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_operator_command_reconciles_and_stops_on_sigterm(
    bare_cluster: Cluster, tmp_path: Path, command: str
) -> None:
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", bare_cluster.url)
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    log_path = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "LITESHIFT_DRIFT_INTERVAL": "1"}
    with log_path.open("w") as log:
        process = subprocess.Popen(
            COMMANDS[command](liveness),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _live(liveness), timeout=30, message="liveness endpoint")
        bare_cluster.create(
            "Datastore",
            {
                "apiVersion": "liteshift.io/v1alpha1",
                "kind": "Datastore",
                "metadata": {"name": "shop", "namespace": NAMESPACE},
                "spec": {},
            },
        )
        statefulset = wait_for(lambda: bare_cluster.get("StatefulSet", "shop"), message="sts")
        assert statefulset["metadata"]["ownerReferences"][0]["name"] == "shop"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0
    lines = [line for line in log_path.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("reconcile_datastore" in str(record.get("message")) for record in records), lines
