"""restore_backup: verified first, never over a live database, checked at the end."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from liteshift.backup import (
    BackupOptions,
    ChecksumMismatch,
    EngineMismatch,
    InvalidManifest,
    RestoreRefused,
    SchemaTooNew,
    create_backup,
    restore_backup,
)
from liteshift.backup.manifest import MANIFEST_NAME
from tests.backup.conftest import flip_byte


@pytest.fixture
def backup_dir(store_file: tuple[Path, dict[str, int]], tmp_path: Path) -> Path:
    manifest = create_backup(f"sqlite://{store_file[0]}", tmp_path / "backups")
    return tmp_path / "backups" / manifest.id


def _counts(path: Path) -> dict[str, int]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            name: conn.execute(f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"').get
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        }
    finally:
        conn.close()


def test_restore_into_a_new_file(
    backup_dir: Path, store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    target = tmp_path / "new" / "restored.db"
    target.parent.mkdir()
    result = restore_backup(backup_dir, f"sqlite://{target}")
    assert result.row_counts == store_file[1]
    assert result.check == "quick_check"
    assert sorted(p.name for p in target.parent.iterdir()) == ["restored.db"]
    assert _counts(target) == store_file[1]


def test_existing_database_needs_force(backup_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "existing.db"
    conn = apsw.Connection(str(target))
    conn.execute("CREATE TABLE keep (x); INSERT INTO keep VALUES (1)")
    conn.close()
    with pytest.raises(RestoreRefused, match="already exists; pass --force"):
        restore_backup(backup_dir, f"sqlite://{target}")
    assert _counts(target) == {"keep": 1}
    restore_backup(backup_dir, f"sqlite://{target}", force=True)
    assert "keep" not in _counts(target)


def test_live_database_is_refused_even_with_force(backup_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "live.db"
    live = apsw.Connection(str(target))
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    try:
        with pytest.raises(RestoreRefused, match="another process has it open"):
            restore_backup(backup_dir, f"sqlite://{target}", force=True)
        assert live.execute("SELECT count(*) FROM t").get == 1
    finally:
        live.close()


def test_stale_wal_is_removed(backup_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "crashed.db"
    # A crashed old database leaves its -wal: replaying it into the new file would corrupt it.
    conn = apsw.Connection(str(target))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE old (x); INSERT INTO old VALUES (1)")
    wal = Path(f"{target}-wal").read_bytes()
    conn.close()
    Path(f"{target}-wal").write_bytes(wal)
    result = restore_backup(backup_dir, f"sqlite://{target}", force=True)
    assert not Path(f"{target}-wal").exists()
    assert _counts(target) == result.row_counts


def test_flipped_byte_is_refused_and_target_untouched(backup_dir: Path, tmp_path: Path) -> None:
    flip_byte(backup_dir / "data.db", 5000)
    target = tmp_path / "restored.db"
    with pytest.raises(ChecksumMismatch, match="is damaged"):
        restore_backup(backup_dir, f"sqlite://{target}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backups", "live"]


def test_truncated_manifest_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    path = backup_dir / MANIFEST_NAME
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(InvalidManifest, match="not valid JSON"):
        restore_backup(backup_dir, f"sqlite://{tmp_path}/r.db")


def test_newer_schema_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(
        SchemaTooNew, match="schema version 2 but this liteshift knows only up to 1"
    ):
        restore_backup(backup_dir, f"sqlite://{tmp_path}/r.db", known_version=1)
    assert not (tmp_path / "r.db").exists()


def test_sqlite_backup_into_postgres_is_refused(backup_dir: Path) -> None:
    with pytest.raises(EngineMismatch, match="sqlite backup cannot be restored into postgres"):
        restore_backup(backup_dir, "postgresql://nobody@127.0.0.1:1/x")


def test_compressed_restore_replaces_existing(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    manifest = create_backup(
        f"sqlite://{store_file[0]}", tmp_path / "z", BackupOptions(compression="zstd")
    )
    target = tmp_path / "t.db"
    target.write_bytes(b"not a database at all")
    result = restore_backup(tmp_path / "z" / manifest.id, f"sqlite://{target}", force=True)
    assert _counts(target) == result.row_counts == store_file[1]
