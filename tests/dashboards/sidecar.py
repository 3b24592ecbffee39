"""A real `liteshift serve` process on a loopback port, for the dashboard and docs tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from liteshift.local.ports import free_port

LITESHIFT = Path(sys.executable).parent / "liteshift"


@contextmanager
def serve(workdir: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """Run `liteshift serve --port <free> args...` in `workdir`; yield its base URL once ready."""
    port = free_port()
    log_path = workdir / "sidecar.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(LITESHIFT), "serve", "--port", str(port), *args],
            env={**os.environ, **env},
            cwd=workdir,
            stdout=log,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "sidecar not ready after 60 s"
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)
