"""Run the real `helm` binary (installed in the venv) against charts/liteshift."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "liteshift"
HELM = Path(sys.executable).parent / "helm"
RELEASE = "liteshift"
NAMESPACE = "liteshift-system"


class HelmFailed(Exception):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.output = result.stdout + result.stderr
        super().__init__(f"helm {' '.join(args)} exited {result.returncode}:\n{self.output}")


def helm(*args: str) -> str:
    """stdout of `helm args...`; raises HelmFailed on a non-zero exit."""
    # A missing binary is a FileNotFoundError: a failure, never a skip.
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise HelmFailed(list(args), result)
    return result.stdout


def value_args(values: dict[str, Any] | None, tmp_path: Path | None) -> list[str]:
    if not values:
        return []
    assert tmp_path is not None, "values need a directory for the values file"
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return ["--values", str(path)]


def render(
    values: dict[str, Any] | None = None,
    tmp_path: Path | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    kube_version: str = "1.37.0",
) -> list[dict[str, Any]]:
    """Every object `helm template --include-crds` renders, parsed (a fresh copy each call)."""
    del tmp_path  # kept for symmetry with lint(); renders are cached across tests
    out = _render(json.dumps(values or {}, sort_keys=True), api_versions, kube_version)
    return [doc for doc in yaml.safe_load_all(out) if doc]


@functools.cache
def _render(values_json: str, api_versions: tuple[str, ...], kube_version: str) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--include-crds"]
    args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    with tempfile.TemporaryDirectory() as tmp:
        return helm(*args, *value_args(json.loads(values_json), Path(tmp)))


def lint(values: dict[str, Any] | None = None, tmp_path: Path | None = None) -> str:
    return helm("lint", "--strict", str(CHART), *value_args(values, tmp_path))


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(objects, kind)
    return found
