"""Build and run the one-process Kubernetes control plane of tests/cluster (see docs/testing.md).

`build()` compiles main.go with the Go toolchain (Go's build cache makes every build after the
first take seconds); `start()` runs it in a scratch directory and returns once `/readyz` answers
200 and the controller-manager is running. Every failure raises `ControlPlaneError` with the
reason and the tail of the build or server log: the e2e tests fail on it, they never skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

CLUSTER_DIR = Path(__file__).resolve().parent
BINARY = CLUSTER_DIR / "bin" / "cluster"
# Where a fresh machine of this project's kind has Go when it is not on PATH.
FALLBACK_GO = Path("/usr/local/go/bin/go")
# A cold build of k8s.io/kubernetes takes ~11 min on 2 idle cores; leave room for a busy machine.
BUILD_TIMEOUT = 2400.0


class ControlPlaneError(Exception):
    """The control plane could not be built, started or stopped; `str()` says why."""


def find_go(path: str | None = None, fallback: Path = FALLBACK_GO) -> str:
    """The `go` binary on `path` (default: $PATH) or at `fallback`; raises when there is none."""
    found = shutil.which("go", path=path)
    if found:
        return found
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return str(fallback)
    raise ControlPlaneError(
        f"the Go toolchain (`go`, >= 1.26) is not on PATH nor at {fallback}: the e2e tests "
        "build their Kubernetes control plane from source; install Go and run them again"
    )


def kubernetes_version(go_mod: Path = CLUSTER_DIR / "go.mod") -> str:
    """The k8s.io/kubernetes version go.mod requires, e.g. `v1.37.2`."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\d+\.\d+\.\d+)\s*$", go_mod.read_text(), re.M)
    if match is None:
        raise ControlPlaneError(f"{go_mod} does not require k8s.io/kubernetes")
    return match.group(1)


def version_ldflags(version: str) -> str:
    """Linker flags stamping the release into the binary, as Kubernetes' own build does.

    Without them the server reports `v0.0.0-master`, and clients that check the version (Helm's
    `kubeVersion`, kubectl's skew warning) refuse or complain.
    """
    major, minor, _ = version.lstrip("v").split(".")
    package = "k8s.io/component-base/version"
    values = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
    return " ".join(f"-X {package}.{key}={value}" for key, value in values.items())


@dataclass(frozen=True)
class Build:
    """A built control-plane binary and how long `go build` took (cold or cached)."""

    binary: Path
    seconds: float


def build(go: str | None = None, timeout: float = BUILD_TIMEOUT) -> Build:
    """Run `go build` in tests/cluster; modules are downloaded on the first run."""
    go = go or find_go()
    BINARY.parent.mkdir(exist_ok=True)
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                go,
                "build",
                "-ldflags",
                version_ldflags(kubernetes_version()),
                "-o",
                str(BINARY),
                ".",
            ],
            cwd=CLUSTER_DIR,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ControlPlaneError(f"`go build` in {CLUSTER_DIR} took over {timeout:.0f}s") from exc
    except OSError as exc:
        raise ControlPlaneError(f"cannot run {go}: {exc}") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise ControlPlaneError(
            f"`go build` in {CLUSTER_DIR} failed (exit {result.returncode}):\n{tail}"
        )
    return Build(BINARY, time.monotonic() - started)


@dataclass
class ControlPlane:
    """One running control plane; `stop()` ends it with SIGTERM and removes its data."""

    process: subprocess.Popen[bytes]
    workdir: Path
    kubeconfig: Path
    server: str
    token: str
    ca_pem: str
    log: Path

    def ssl_context(self) -> ssl.SSLContext:
        """TLS that trusts this run's CA (the one in the kubeconfig), verifying the server."""
        return ssl.create_default_context(cadata=self.ca_pem)

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's combined output, for failure messages."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 60.0, remove: bool = True) -> int:
        """SIGTERM, wait for a clean exit (kill after `timeout`), delete the data; exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                shutil.rmtree(self.workdir, ignore_errors=True)
                raise ControlPlaneError(
                    f"control plane ignored SIGTERM for {timeout:.0f}s:\n{self.log_tail()}"
                ) from None
        if remove:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return int(self.process.returncode)


def _readyz(plane: ControlPlane) -> tuple[int, str]:
    request = urllib.request.Request(
        plane.server + "/readyz", headers={"Authorization": f"Bearer {plane.token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5, context=plane.ssl_context()) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def read_kubeconfig(path: Path) -> tuple[str, str, str]:
    """Server URL, admin token and CA (PEM) of a kubeconfig the control plane wrote."""
    config = yaml.safe_load(path.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
    return str(cluster["server"]), str(user["token"]), ca


def start(binary: Path, workdir: Path, timeout: float = 180.0) -> ControlPlane:
    """Start `binary` with its data in `workdir`; return once it is ready, else raise."""
    workdir.mkdir(parents=True, exist_ok=True)
    kubeconfig = workdir / "kubeconfig"
    log = workdir / "cluster.log"
    with log.open("wb") as out:
        if not binary.is_file():
            raise ControlPlaneError(f"no control-plane binary at {binary}: build() it first")
        process = subprocess.Popen(
            [str(binary), "-data-dir", str(workdir / "data"), "-kubeconfig", str(kubeconfig)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    plane = ControlPlane(process, workdir, kubeconfig, "", "", "", log)
    deadline = time.monotonic() + timeout
    try:
        # The binary writes the kubeconfig only once etcd, the apiserver and the
        # controller-manager are all up; /readyz is then checked from the outside too.
        while not kubeconfig.exists():
            if process.poll() is not None:
                raise ControlPlaneError(
                    f"control plane exited with {process.returncode} while starting:\n"
                    + plane.log_tail()
                )
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"control plane not ready after {timeout:.0f}s:\n" + plane.log_tail()
                )
            time.sleep(0.2)
        plane.server, plane.token, plane.ca_pem = read_kubeconfig(kubeconfig)
        status, body = _readyz(plane)
        while status != 200:
            if time.monotonic() > deadline or process.poll() is not None:
                raise ControlPlaneError(
                    f"{plane.server}/readyz answered {status}: {body}\n" + plane.log_tail()
                )
            time.sleep(0.2)
            status, body = _readyz(plane)
    except BaseException:
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    return plane


def describe(plane: ControlPlane) -> str:
    """A one-line JSON summary (server, kubeconfig, pid) for logs."""
    return json.dumps(
        {"server": plane.server, "kubeconfig": str(plane.kubeconfig), "pid": plane.process.pid}
    )


def main() -> int:
    """`python -m tests.cluster.controlplane`: build the binary (what `make cluster` runs)."""
    try:
        built = build()
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"built {built.binary} in {built.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
