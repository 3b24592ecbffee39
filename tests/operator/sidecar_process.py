"""`liteshift serve` as a real subprocess on a loopback port, for the operator's backup tests
(kmock and the real control plane alike)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from liteshift.local.ports import free_port

ADMIN_TOKEN = "admin-token-for-operator-tests-0123"
API_TOKEN = "api-token-for-operator-tests-4567"


class SidecarProcess:
    """`liteshift serve` as a subprocess on a loopback port."""

    def __init__(self, tmp_path: Path, datastore: str, namespace: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backup_dir = tmp_path / "backups"
        self.log = tmp_path / "sidecar.log"
        self.env = {
            **os.environ,
            "LITESHIFT_DB_URL": f"sqlite:///{tmp_path / 'data' / 'liteshift.db'}",
            "LITESHIFT_PORT": str(self.port),
            "LITESHIFT_API_TOKEN": API_TOKEN,
            "LITESHIFT_ADMIN_TOKEN": ADMIN_TOKEN,
            "LITESHIFT_BACKUP_DIR": str(self.backup_dir),
            "LITESHIFT_DATASTORE": datastore,
            "LITESHIFT_NAMESPACE": namespace,
            "LITESHIFT_VECTOR_DIMENSION": "4",
        }
        (tmp_path / "data").mkdir(exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "liteshift"), "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "sidecar did not start: " + self.log.read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None

    def add_messages(self, count: int) -> None:
        for i in range(count):
            response = httpx.post(
                f"{self.url}/v1/messages",
                headers={"Authorization": f"Bearer {API_TOKEN}"},
                json={"conversation_id": "c", "role": "user", "content": f"m{i}"},
            )
            assert response.status_code == 201, response.text
