"""Helpers for the e2e tests: the real `kubectl`, polling, ServiceAccount tokens."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException


@dataclass
class Kubectl:
    """The real `kubectl` binary, pointed at the e2e control plane."""

    binary: Path
    kubeconfig: Path

    def run(
        self, *args: str, stdin: str | None = None, token: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `kubectl ARGS`; `token` acts as another user; `check` fails the test on exit != 0."""
        command = [str(self.binary), "--kubeconfig", str(self.kubeconfig)]
        if token is not None:
            command += ["--token", token]
        result = subprocess.run(
            [*command, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        """`kubectl ARGS -o json`, parsed."""
        return json.loads(self.run(*args, "-o", "json").stdout)


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.5,
) -> None:
    """Poll `condition` until true; fail with `what` (a callable is asked at failure time)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            described = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {described}")
        time.sleep(interval)


def service_account_token(
    api_client: client.ApiClient, namespace: str, name: str, seconds: int = 3600
) -> str:
    """A token for ServiceAccount `name` from the TokenRequest API (like `kubectl create token`)."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds)
    )
    response = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        name, namespace, request
    )
    assert response.status is not None
    return str(response.status.token)


def api_message(exc: ApiException) -> str:
    """The `message` of the Status object in an API error's body (quotes unescaped)."""
    return str(json.loads(exc.body)["message"])
