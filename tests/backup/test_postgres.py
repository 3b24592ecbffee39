"""pg_dump / pg_restore round trips against the harness's real Postgres server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from liteshift.backup import (
    BackupOptions,
    ChecksumMismatch,
    InvalidBackupOption,
    RestoreRefused,
    RowCountMismatch,
    create_backup,
    read_manifest,
    restore_backup,
    verify_backup,
)
from liteshift.local.postgres import PostgresServer
from tests.backup.conftest import flip_byte
from tests.conftest import ExternalPostgres

SCHEMA = """
CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,
    checksum text NOT NULL);
INSERT INTO schema_migrations VALUES (1, 'core', 'x'), (2, 'indexes', 'y');
CREATE TABLE messages (id text PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE events (seq bigserial PRIMARY KEY, kind text NOT NULL);
CREATE SCHEMA media;
CREATE TABLE media.attachments (id text PRIMARY KEY, message_id text NOT NULL);
INSERT INTO messages
    SELECT 'm' || g, jsonb_build_object('n', g), now() FROM generate_series(1, 1500) g;
INSERT INTO events (kind) SELECT 'k' || g FROM generate_series(1, 700) g;
INSERT INTO media.attachments SELECT 'a' || g, 'm' || g FROM generate_series(1, 30) g;
"""
EXPECTED = {"schema_migrations": 2, "messages": 1500, "events": 700, "media.attachments": 30}


@pytest.fixture
def source_dsn(postgres_dsn: str) -> str:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(SCHEMA)
    return postgres_dsn


@pytest.fixture
def empty_dsn(postgres_server: PostgresServer | ExternalPostgres) -> Iterator[str]:
    dsn = postgres_server.create_database("liteshift_restore")
    yield dsn
    postgres_server.drop_database(dsn)


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_round_trip(source_dsn: str, empty_dsn: str, tmp_path: Path, codec: str) -> None:
    manifest = create_backup(
        source_dsn,
        tmp_path / "b",
        BackupOptions(compression=codec),  # type: ignore[arg-type]
    )
    assert manifest.engine == "postgres"
    assert manifest.row_counts == EXPECTED
    assert manifest.schema_version == 2
    assert manifest.check == "pg_restore --list"
    directory = tmp_path / "b" / manifest.id
    assert verify_backup(directory).check == "pg_restore --list"
    result = restore_backup(directory, empty_dsn)
    assert {t: result.row_counts[t] for t in EXPECTED} == EXPECTED
    with psycopg.connect(empty_dsn) as conn:
        row = conn.execute("SELECT body->>'n' FROM messages WHERE id = 'm42'").fetchone()
    assert row == ("42",)


def test_non_empty_target_needs_force(source_dsn: str, empty_dsn: str, tmp_path: Path) -> None:
    manifest = create_backup(source_dsn, tmp_path / "b")
    directory = tmp_path / "b" / manifest.id
    with psycopg.connect(empty_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE messages (id text PRIMARY KEY)")
        conn.execute("INSERT INTO messages VALUES ('stale')")
    with pytest.raises(RestoreRefused, match=r"not empty \(messages\); pass --force"):
        restore_backup(directory, empty_dsn)
    result = restore_backup(directory, empty_dsn, force=True)
    assert result.row_counts["messages"] == 1500


def test_restore_checks_row_counts(source_dsn: str, empty_dsn: str, tmp_path: Path) -> None:
    manifest = create_backup(source_dsn, tmp_path / "b")
    directory = tmp_path / "b" / manifest.id
    # A manifest that promises more rows than the dump holds must fail the restore.
    data = read_manifest(directory).to_json()
    data["row_counts"]["events"] = 701
    (directory / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(RowCountMismatch, match="events: manifest 701, found 700"):
        restore_backup(directory, empty_dsn)


def test_damaged_dump_is_refused(source_dsn: str, empty_dsn: str, tmp_path: Path) -> None:
    manifest = create_backup(source_dsn, tmp_path / "b")
    directory = tmp_path / "b" / manifest.id
    flip_byte(directory / manifest.file, manifest.size // 2)
    with pytest.raises(ChecksumMismatch):
        verify_backup(directory)
    with pytest.raises(ChecksumMismatch):
        restore_backup(directory, empty_dsn)


def test_store_on_postgres_round_trips(postgres_dsn: str, empty_dsn: str, tmp_path: Path) -> None:
    from liteshift.backup.schema import known_schema_version
    from liteshift.store import open_store
    from liteshift.store.models import MessageIn

    store = open_store(postgres_dsn, migrate=True)
    try:
        ids = [
            store.create_message(MessageIn(conversation_id="c", role="user", content=f"m{i}")).id
            for i in range(20)
        ]
        manifest = create_backup(postgres_dsn, tmp_path / "b", BackupOptions(compression="zstd"))
    finally:
        store.close()
    assert manifest.schema_version == known_schema_version("postgres") is not None
    assert manifest.row_counts["messages"] == 20
    restore_backup(tmp_path / "b" / manifest.id, empty_dsn)
    restored = open_store(empty_dsn)
    try:
        assert restored.get_message(ids[3]).content == "m3"
    finally:
        restored.close()


def test_as_sqlite_primary_is_refused_for_a_postgres_backup(
    source_dsn: str, empty_dsn: str, tmp_path: Path
) -> None:
    manifest = create_backup(source_dsn, tmp_path / "b")
    with pytest.raises(InvalidBackupOption, match="applies to SQLite backups only"):
        restore_backup(tmp_path / "b" / manifest.id, empty_dsn, as_sqlite_primary=True)
    with psycopg.connect(empty_dsn) as conn:  # refused before anything was restored
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == (0,)
