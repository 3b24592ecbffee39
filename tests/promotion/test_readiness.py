"""Readiness checks against the real throwaway Postgres."""

from __future__ import annotations

import psycopg
import pytest

from liteshift.local.ports import free_port
from liteshift.promotion.errors import ReadinessFailed
from liteshift.promotion.readiness import check_readiness
from liteshift.store.transfer import DOMAIN_TABLES


def test_fresh_database_is_migrated_and_every_check_passes(postgres_dsn: str) -> None:
    report = check_readiness(postgres_dsn, sqlite_version=2, sqlite_bytes=1024)
    checks = {c.name: c for c in report.checks}
    assert report.ok, [c for c in report.checks if c.failed]
    assert checks["reachable"].status == "passed"
    assert checks["version"].status == "passed" and "Postgres 1" in checks["version"].message
    assert checks["schema"].status == "passed"
    for spec in DOMAIN_TABLES:
        assert checks[f"smoke:{spec.name}"].status == "passed"
    assert checks["disk"].status == "passed"
    # The smoke rows were rolled back; the migrations were really applied.
    with psycopg.connect(postgres_dsn) as conn:
        for spec in DOMAIN_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {spec.name}").fetchone() == (0,)
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (2,)
    report.raise_if_failed()


def test_unreachable_postgres_fails_with_an_actionable_message() -> None:
    report = check_readiness(f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")
    assert [c.name for c in report.checks] == ["reachable"]
    assert report.checks[0].failed and "check the DSN" in report.checks[0].message
    with pytest.raises(ReadinessFailed, match="reachable"):
        report.raise_if_failed()


def test_schema_version_mismatch_fails(postgres_dsn: str) -> None:
    check_readiness(postgres_dsn)  # migrates to the newest version
    report = check_readiness(postgres_dsn, sqlite_version=1, migrate=False)
    schema = {c.name: c for c in report.checks}["schema"]
    assert schema.failed
    assert "SQLite at 1" in schema.message


def test_a_broken_table_fails_its_smoke_test_and_the_schema_check(postgres_dsn: str) -> None:
    check_readiness(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE events ADD CONSTRAINT no_rows CHECK (length(id) < 5)")
    report = check_readiness(postgres_dsn, sqlite_version=2)
    checks = {c.name: c for c in report.checks}
    assert checks["smoke:events"].failed
    assert "no_rows" in checks["smoke:events"].message
    assert checks["smoke:messages"].status == "passed"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("ALTER TABLE messages ALTER COLUMN metadata TYPE text")
    schema = {c.name: c for c in check_readiness(postgres_dsn).checks}["schema"]
    assert schema.failed and "messages.metadata is text" in schema.message


def test_too_little_disk_fails(postgres_dsn: str) -> None:
    report = check_readiness(postgres_dsn, sqlite_bytes=2**62)
    disk = {c.name: c for c in report.checks}["disk"]
    assert disk.failed and "free space" in disk.message


def test_dry_run_inspects_without_writing(postgres_dsn: str) -> None:
    report = check_readiness(postgres_dsn, sqlite_version=2, migrate=False)
    checks = {c.name: c for c in report.checks}
    assert report.ok
    assert checks["schema"].status == "unmeasured"
    assert "will apply 2 migration(s)" in checks["schema"].message
    assert not any(name.startswith("smoke:") for name in checks)
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
