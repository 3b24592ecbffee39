"""`liteshift serve` as a real process: startup output, generated tokens, kill -9 durability."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from liteshift.local.ports import free_port
from liteshift.store import open_store

LITESHIFT = str(Path(sys.executable).parent / "liteshift")


@contextmanager
def serve(
    cwd: Path, env: dict[str, str], *args: str
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    full_env = {**os.environ, **env}
    process = subprocess.Popen(
        [LITESHIFT, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "liteshift serve did not become ready"
            time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)
        if process.stdout:
            process.stdout.close()


def test_default_store_and_generated_tokens(tmp_path: Path) -> None:
    env = {
        k: ""
        for k in (
            "LITESHIFT_DB_URL",
            "LITESHIFT_API_TOKEN",
            "LITESHIFT_ADMIN_TOKEN",
            "LITESHIFT_TOKEN_DIR",
        )
    }
    with serve(tmp_path, env) as (process, url):
        data = tmp_path / "liteshift-data"
        assert (data / "liteshift.db").exists()
        api = (data / "api-token").read_text().strip()
        admin = (data / "admin-token").read_text().strip()
        for token_file in ("api-token", "admin-token"):
            assert stat.S_IMODE((data / token_file).stat().st_mode) == 0o600
        made = httpx.post(
            f"{url}/v1/messages",
            headers={"Authorization": f"Bearer {api}"},
            json={"conversation_id": "c", "role": "r", "content": "hello"},
        )
        assert made.status_code == 201
        assert (
            httpx.get(
                f"{url}/admin/status", headers={"Authorization": f"Bearer {admin}"}
            ).status_code
            == 200
        )
        process.terminate()
        output, _ = process.communicate(timeout=15)
    assert f"liteshift sidecar: {url}" in output
    assert f"{data / 'api-token'} (generated, mode 0600)" in output
    assert api not in output and admin not in output
    # A restart reuses the generated tokens: clients keep working.
    with serve(tmp_path, env) as (_, url):
        response = httpx.get(f"{url}/v1/messages", headers={"Authorization": f"Bearer {api}"})
        assert [m["content"] for m in response.json()["items"]] == ["hello"]


def test_serves_a_postgres_store_given_by_flag(tmp_path: Path, postgres_dsn: str) -> None:
    env = {"LITESHIFT_API_TOKEN": "pg-api", "LITESHIFT_ADMIN_TOKEN": "pg-admin"}
    with serve(tmp_path, env, "--db", postgres_dsn) as (_, url):
        auth = {"Authorization": "Bearer pg-api"}
        made = httpx.post(f"{url}/v1/events", headers=auth, json={"type": "t", "payload": {}})
        assert made.status_code == 201
        got = httpx.get(f"{url}/v1/events/{made.json()['id']}", headers=auth)
        assert got.json() == made.json()
        status = httpx.get(f"{url}/admin/status", headers={"Authorization": "Bearer pg-admin"})
        assert status.json()["engine"] == "postgres"


def test_bad_setting_is_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [LITESHIFT, "serve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "LITESHIFT_MAX_BODY_BYTES": "lots"},
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: LITESHIFT_MAX_BODY_BYTES: 'lots' is not an integer"


@pytest.mark.slow
def test_every_acknowledged_write_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "durable.db"
    env = {
        "LITESHIFT_DB_URL": f"sqlite:///{db}",
        "LITESHIFT_API_TOKEN": "t-api",
        "LITESHIFT_ADMIN_TOKEN": "t-admin",
        "LITESHIFT_SQLITE_SYNCHRONOUS": "FULL",
    }
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    with serve(tmp_path, env) as (process, url):

        def writer(n: int) -> None:
            with httpx.Client(
                base_url=url, headers={"Authorization": "Bearer t-api"}, timeout=10
            ) as http:
                i = 0
                while not stop.is_set():
                    try:
                        response = http.post(
                            "/v1/events", json={"type": "durable", "payload": {"w": n, "i": i}}
                        )
                    except httpx.TransportError:
                        return
                    if response.status_code == 201:
                        with lock:
                            acked.append(response.json()["id"])
                    i += 1

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    assert len(acked) >= 300
    store = open_store(f"sqlite:///{db}")
    try:
        found: set[str] = set()
        cursor = None
        while True:
            page = store.list_events(type="durable", limit=1000, cursor=cursor)
            found |= {e.id for e in page.items}
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        store.close()
    missing = set(acked) - found
    assert not missing, f"{len(missing)} acknowledged writes lost"
