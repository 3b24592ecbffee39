"""The sidecar image of a Datastore without `spec.image`: the chart's image reaches it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml

from liteshift.local.ports import free_port
from liteshift.operator.image import BUILTIN_IMAGE, SIDECAR_IMAGE_ENV, sidecar_image
from tests.chart.helm import one, render
from tests.operator.cluster import NAMESPACE, Cluster, wait_for

LITESHIFT = Path(sys.executable).parent / "liteshift"
CHART_IMAGE = "registry.example:5000/mirror/liteshift:dev-7"


def test_environment_names_the_image() -> None:
    assert sidecar_image({SIDECAR_IMAGE_ENV: CHART_IMAGE}) == CHART_IMAGE
    assert sidecar_image({SIDECAR_IMAGE_ENV: f" {CHART_IMAGE}\n"}) == CHART_IMAGE


def test_unset_or_blank_falls_back_to_the_release_image() -> None:
    assert sidecar_image({}) == BUILTIN_IMAGE
    assert sidecar_image({SIDECAR_IMAGE_ENV: "  "}) == BUILTIN_IMAGE


def _kubeconfig(path: Path, url: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": url}}],
                "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                "contexts": [
                    {"name": "emulator", "context": {"cluster": "emulator", "user": "tester"}}
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


def _datastore(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _image(cluster: Cluster, name: str) -> str:
    statefulset = wait_for(lambda: cluster.get("StatefulSet", name), message=f"sts {name}")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_chart_image_becomes_the_sidecar_image(bare_cluster: Cluster, tmp_path: Path) -> None:
    # The chart rendered with a mirror's image; its operator container's environment (what
    # the kubelet would give it) for a real `liteshift operator` against the API server.
    values = {"image": {"repository": CHART_IMAGE.rsplit(":", 1)[0], "tag": "dev-7"}}
    deployment = one(render(values, tmp_path), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == CHART_IMAGE
    env = {**os.environ, **{var["name"]: var["value"] for var in container["env"]}}
    env.update(KUBECONFIG=str(_kubeconfig(tmp_path / "kubeconfig", bare_cluster.url)))
    liveness = f"http://127.0.0.1:{free_port()}/healthz"
    log_path = tmp_path / "operator.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(LITESHIFT), "operator", "--liveness", liveness, "--log-format", "text"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: _live(liveness), timeout=30, message="liveness endpoint")
        bare_cluster.create("Datastore", _datastore("plain", {}))
        bare_cluster.create("Datastore", _datastore("pinned", {"image": "example.org/own:1"}))
        assert _image(bare_cluster, "plain") == CHART_IMAGE
        assert _image(bare_cluster, "pinned") == "example.org/own:1"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, log_path.read_text()[-3000:]
