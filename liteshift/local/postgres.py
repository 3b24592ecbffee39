"""A throwaway Postgres server on loopback, built from the Debian `postgresql` binaries.

Used by the test harness, the benchmarks and `liteshift demo`. `initdb` refuses to run as root,
so as root the data directory belongs to the unprivileged `postgres` user (created by the Debian
package) and every server command runs through `runuser`.

A server never outlives the process that started it (`liteshift.local.owner`): a watchdog
stops it and removes its directory when that process dies, even by SIGKILL, and every start
first stops the servers whose owner is dead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from liteshift.local import owner
from liteshift.local.errors import LocalServerError
from liteshift.local.ports import free_port, wait_for_port

SUPERUSER = "liteshift"
DIR_PREFIX = "liteshift-pg-"


def create_database(admin_dsn: str, prefix: str = "liteshift_test") -> str:
    """Create a fresh, uniquely named database on the server of `admin_dsn`; return its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return admin_dsn.rsplit("/", 1)[0] + "/" + name


def drop_database(admin_dsn: str, dsn: str) -> None:
    """Drop the database named by `dsn`, disconnecting its clients."""
    name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def find_bindir() -> Path:
    """The directory holding initdb/pg_ctl of the newest installed Postgres major version."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise LocalServerError("postgres", "no initdb found (Debian package `postgresql`)")


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise LocalServerError("postgres", "running as root and no unprivileged user exists")


@dataclass
class PostgresServer:
    """One running throwaway server; `stop()` removes it and its data."""

    port: int
    datadir: Path
    bindir: Path
    run_as: str | None
    settings: dict[str, str] = field(default_factory=dict)
    watchdog: owner.Watchdog | None = None

    @property
    def admin_dsn(self) -> str:
        return self.dsn("postgres")

    def dsn(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "liteshift_test") -> str:
        """Create a fresh, uniquely named database and return its DSN."""
        return create_database(self.admin_dsn, prefix)

    def drop_database(self, dsn: str) -> None:
        drop_database(self.admin_dsn, dsn)

    def _cmd(self, *args: str) -> list[str]:
        return _server_cmd(self.bindir, self.run_as, *args)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (immediately by default: it is throwaway) and delete its data."""
        if self.watchdog is not None:
            self.watchdog.disarm()
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop"),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def pause(self) -> None:
        """Stop the server but keep its data (to test an unreachable Postgres)."""
        subprocess.run(
            self._cmd("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop"),
            capture_output=True,
            check=False,
        )

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        _pg_ctl_start(self)


def _server_cmd(bindir: Path, run_as: str | None, *args: str) -> list[str]:
    cmd = [str(bindir / args[0]), *args[1:]]
    return ["runuser", "-u", run_as, "--", *cmd] if run_as else cmd


def _stop_command(bindir: Path, run_as: str | None, base: Path) -> list[str]:
    return _server_cmd(
        bindir, run_as, "pg_ctl", "-D", str(base / "data"), "-m", "immediate", "-w", "stop"
    )


def reap_orphans() -> list[Path]:
    """Stop and delete every throwaway server whose owner process is dead; return their dirs."""
    reaped = owner.orphans(DIR_PREFIX)
    if not reaped:
        return []
    bindir = find_bindir()
    run_as = _unprivileged_user()
    for base in reaped:
        if (base / "data" / "postmaster.pid").exists():
            subprocess.run(_stop_command(bindir, run_as, base), capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
    return reaped


def _pg_ctl_start(server: PostgresServer) -> None:
    options = " ".join(f"-c {k}={v}" for k, v in server.settings.items())
    log = server.datadir.parent / "postgres.log"
    result = subprocess.run(
        server._cmd(
            "pg_ctl",
            "-D",
            str(server.datadir),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not wait_for_port(server.port, 30):
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else result.stderr
        raise LocalServerError("postgres", f"pg_ctl start failed: {tail.strip()}")


def start_postgres(
    *, durable: bool = False, extra_settings: dict[str, str] | None = None
) -> PostgresServer:
    """Start a throwaway server on a free loopback port.

    `durable=False` turns off fsync: fine for tests whose data dies with the server; the
    benchmarks pass `durable=True` so Postgres is measured as it ships.
    """
    bindir = find_bindir()
    run_as = _unprivileged_user()
    reap_orphans()
    base = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
    owner.write_owner(base)
    datadir = base / "data"
    datadir.mkdir()
    if run_as:
        user = pwd.getpwnam(run_as)
        os.chown(base, user.pw_uid, user.pw_gid)
        os.chown(datadir, user.pw_uid, user.pw_gid)
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": f"'{base}'",
        "max_connections": "200",
        "max_wal_size": "4GB",
    }
    if not durable:
        settings.update({"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"})
    settings.update(extra_settings or {})
    server = PostgresServer(
        port=port, datadir=datadir, bindir=bindir, run_as=run_as, settings=settings
    )
    init = subprocess.run(
        server._cmd(
            "initdb",
            "-D",
            str(datadir),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise LocalServerError("postgres", f"initdb failed: {init.stderr.strip()[-1000:]}")
    # Armed before the server exists: dying during the start leaves nothing behind either.
    server.watchdog = owner.start_watchdog(
        shlex.join(_stop_command(bindir, run_as, base))
        + " >/dev/null 2>&1; rm -rf -- "
        + shlex.quote(str(base))
    )
    try:
        _pg_ctl_start(server)
    except BaseException:
        server.stop()
        raise
    return server
