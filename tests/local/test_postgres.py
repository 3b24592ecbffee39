"""The throwaway Postgres harness itself: a real server, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from liteshift.local.owner import owner_alive, process_alive
from liteshift.local.postgres import PostgresServer, reap_orphans, start_postgres


def test_each_database_is_fresh_and_isolated(postgres_server: PostgresServer) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    try:
        assert first != second
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE only_here (id int)")
        with psycopg.connect(second) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)


def test_dropped_database_is_gone(postgres_server: PostgresServer) -> None:
    dsn = postgres_server.create_database()
    postgres_server.drop_database(dsn)
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(dsn).close()


# --- a server never outlives its owner ------------------------------------------------------

OWNER = """
import json, sys, time
from liteshift.local.postgres import start_postgres
server = start_postgres()
assert server.watchdog is not None
print(json.dumps({"base": str(server.datadir.parent), "port": server.port,
                  "watchdog": server.watchdog.process.pid}), flush=True)
time.sleep(600)
"""


def _start_owner() -> tuple[subprocess.Popen[str], Path, int, int]:
    """A process that starts a server and waits; returns it, the server's dir, postmaster
    pid and the watchdog's pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the owner exited with {process.wait()}"
    started = json.loads(line)
    base = Path(started["base"])
    postmaster = int((base / "data" / "postmaster.pid").read_text().split()[0])
    assert process_alive(postmaster)
    return process, base, postmaster, int(started["watchdog"])


def _sigkill(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def _gone(pid: int, base: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid) and not base.exists():
            return True
        time.sleep(0.1)
    return False


def test_a_sigkilled_owner_takes_its_server_along() -> None:
    process, base, postmaster, _ = _start_owner()
    _sigkill(process)
    # The watchdog sees the owner's pipe close and stops the server at once.
    assert _gone(postmaster, base, 30), f"postmaster {postmaster} or {base} survived its owner"


def test_the_next_start_reaps_a_server_whose_owner_and_watchdog_died() -> None:
    process, base, postmaster, watchdog = _start_owner()
    os.killpg(watchdog, signal.SIGKILL)  # `kill -9` of everything, the watchdog included
    _sigkill(process)
    time.sleep(0.5)
    assert process_alive(postmaster) and base.exists()  # an orphan, nobody left to end it
    assert owner_alive(base) is False
    server = start_postgres()
    try:
        assert not process_alive(postmaster) and not base.exists()
    finally:
        server.stop()
    assert not server.datadir.parent.exists()


def test_a_server_with_a_live_owner_is_left_alone() -> None:
    server = start_postgres()
    try:
        assert server.watchdog is not None and server.watchdog.process.poll() is None
        assert owner_alive(server.datadir.parent) is True
        assert server.datadir.parent not in reap_orphans()
        assert server.datadir.parent.exists()
        with psycopg.connect(server.admin_dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()
    assert server.watchdog.process.returncode is not None  # disarmed, not left running
    assert not server.datadir.parent.exists()
