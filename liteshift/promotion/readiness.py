"""Readiness checks before any data moves (ADR-0001 "migration readiness checks").

Each check returns a typed result whose message tells a person what to do. In order:
`reachable` (can we log in), `version` (Postgres 13 or newer), `disk` (free space next to
the data directory, when Postgres runs on this machine and lets us read it), `schema` (the
same migration files applied — this check applies them, with the store's migration runner —
at the same version as the SQLite store, every domain column of the expected type), and
`smoke:<table>` (insert, read back and delete one row in a transaction that is rolled back). With
`migrate=False` (a dry run) nothing is written: pending migrations make `schema` unmeasured
and the smoke tests wait for the real run.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from liteshift.promotion.errors import ReadinessFailed
from liteshift.store.connect import pg_connect
from liteshift.store.errors import StoreError
from liteshift.store.migrations import MigrationRunner
from liteshift.store.probe import (
    POSTGRES_TYPES,
    column_types,
    data_directory,
    server_version,
    smoke_test,
)
from liteshift.store.transfer import DOMAIN_TABLES, TableSpec
from liteshift.store.urls import parse_url, redact

MIN_SERVER_VERSION = 130000
#: Postgres needs about this many times the SQLite file: rows, TOAST, indexes, WAL headroom.
DISK_FACTOR = 3.0

Status = Literal["passed", "failed", "unmeasured"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    message: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


@dataclass
class ReadinessReport:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    def raise_if_failed(self) -> None:
        failed = [c for c in self.checks if c.failed]
        if failed:
            raise ReadinessFailed(
                [c.name for c in failed],
                "Postgres is not ready: " + "; ".join(f"{c.name}: {c.message}" for c in failed),
            )


def check_readiness(
    dsn: str,
    *,
    sqlite_version: int | None = None,
    sqlite_bytes: int | None = None,
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
    migrate: bool = True,
) -> ReadinessReport:
    """Run every check against the Postgres at `dsn`; stops early when it cannot connect.

    `sqlite_version` is the SQLite store's schema version (the two must match);
    `sqlite_bytes` its size, for the disk estimate. `migrate=False` only inspects.
    """
    report = ReadinessReport()
    shown = redact(dsn)
    try:
        conn = pg_connect(dsn)
    except StoreError as exc:
        report.checks.append(
            Check("reachable", "failed", f"{exc}; check the DSN, the network and the password")
        )
        return report
    try:
        report.checks.append(Check("reachable", "passed", f"connected to {shown}"))
        number, text = server_version(conn)
        if number < MIN_SERVER_VERSION:
            report.checks.append(
                Check("version", "failed", f"Postgres {text} is too old; use 13 or newer")
            )
            return report
        report.checks.append(Check("version", "passed", f"Postgres {text}"))
        report.checks.append(_disk(conn, sqlite_bytes))
        schema = _schema(dsn, conn, sqlite_version, tables, migrate=migrate)
        report.checks.append(schema)
        if schema.status != "passed":
            return report
        for spec in tables:
            report.checks.append(_smoke(conn, spec))
    finally:
        conn.close()
    return report


def _schema(
    dsn: str,
    conn: psycopg.Connection[Any],
    sqlite_version: int | None,
    tables: Sequence[TableSpec],
    *,
    migrate: bool,
) -> Check:
    try:
        with MigrationRunner(parse_url(dsn)) as runner:
            if migrate:
                runner.up(to=sqlite_version)
            states = runner.status()
            version = runner.current_version()
    except StoreError as exc:
        return Check("schema", "failed", f"migrating Postgres failed: {exc}")
    pending = [s for s in states if s.state == "pending"]
    if not migrate and pending and (sqlite_version is None or version < sqlite_version):
        return Check(
            "schema",
            "unmeasured",
            f"Postgres is at schema version {version}; the promotion will apply "
            f"{len(pending)} migration(s) first (smoke tests run after that)",
        )
    bad = [s for s in states if s.state in ("changed", "missing")]
    if bad:
        return Check(
            "schema",
            "failed",
            f"migration {bad[0].version:04d}_{bad[0].name} is {bad[0].state} on Postgres; "
            "it was migrated with other migration files",
        )
    if sqlite_version is not None and version != sqlite_version:
        return Check(
            "schema",
            "failed",
            f"Postgres is at schema version {version}, SQLite at {sqlite_version}: run "
            "`liteshift migrate up` on both so they match",
        )
    for spec in tables:
        found = column_types(conn, spec.name)
        if not found:
            return Check("schema", "failed", f"table {spec.name} does not exist on Postgres")
        for column in spec.columns:
            expected = POSTGRES_TYPES[column.kind]
            actual = found.get(column.name)
            if actual is None or actual[0] != expected:
                return Check(
                    "schema",
                    "failed",
                    f"{spec.name}.{column.name} is {actual[0] if actual else 'missing'} on "
                    f"Postgres, expected {expected}",
                )
    return Check("schema", "passed", f"schema version {version}, every domain column typed")


def _smoke(conn: psycopg.Connection[Any], spec: TableSpec) -> Check:
    name = f"smoke:{spec.name}"
    try:
        smoke_test(conn, spec)
    except (psycopg.Error, ValueError) as exc:
        conn.rollback()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Check(name, "failed", f"write/read/delete of a test row failed: {first}")
    return Check(name, "passed", "a test row was written, read back and deleted (rolled back)")


def _disk(conn: psycopg.Connection[Any], sqlite_bytes: int | None) -> Check:
    directory = data_directory(conn)
    if directory is None:
        return Check(
            "disk", "unmeasured", "this role may not read data_directory; check free space by hand"
        )
    path = Path(directory)
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return Check(
            "disk",
            "unmeasured",
            f"data directory {directory} is not on this machine; check free space by hand",
        )
    if sqlite_bytes is None:
        return Check("disk", "passed", f"{_mib(usage.free)} free at {directory}")
    needed = int(sqlite_bytes * DISK_FACTOR)
    if usage.free < needed:
        return Check(
            "disk",
            "failed",
            f"{_mib(usage.free)} free at {directory}, about {_mib(needed)} needed "
            f"({DISK_FACTOR:g}x the SQLite file); free space or grow the volume",
        )
    return Check("disk", "passed", f"{_mib(usage.free)} free, about {_mib(needed)} needed")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"
