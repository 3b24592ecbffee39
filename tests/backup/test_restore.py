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
from liteshift.store import changelog, open_store
from liteshift.store.models import MessageIn
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


# --- what an online promotion leaves in a backup -------------------------------------------

DIM = 3


def _liteshift_store(path: Path) -> Path:
    store = open_store(f"sqlite://{path}", migrate=True, vector_dimension=DIM)
    try:
        for n in range(5):
            store.create_message(MessageIn(conversation_id="c", role="user", content=f"m{n}"))
    finally:
        store.close()
    return path


def _write(path: Path, content: str) -> None:
    store = open_store(f"sqlite://{path}", vector_dimension=DIM)
    try:
        store.create_message(MessageIn(conversation_id="c", role="user", content=content))
    finally:
        store.close()


def _messages(path: Path) -> int:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(conn.execute("SELECT count(*) FROM messages").get)
    finally:
        conn.close()


def _promotion_objects(path: Path) -> set[str]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_schema WHERE name LIKE '%liteshift%'"
            )
        }
    finally:
        conn.close()


def test_a_backup_taken_during_a_promotion_is_restored_without_its_capture(
    tmp_path: Path,
) -> None:
    live = _liteshift_store(tmp_path / "live.db")
    changelog.install(str(live))
    changelog.set_copy_target(str(live), "postgresql://app:***@db/app")
    _write(live, "logged")  # a row in the changelog, as while the copy runs
    manifest = create_backup(f"sqlite://{live}", tmp_path / "backups")
    assert manifest.row_counts[changelog.CHANGES] == 1
    target = tmp_path / "restored.db"
    result = restore_backup(tmp_path / "backups" / manifest.id, f"sqlite://{target}")

    assert result.promotion is not None and not result.promotion.demoted
    assert result.promotion.state.pending_changes == 1
    assert "change capture of an online promotion removed" in result.promotion.describe()
    assert changelog.CHANGES not in result.row_counts
    assert result.row_counts["messages"] == 6
    assert _promotion_objects(target) == set()
    _write(target, "not logged")  # nothing captures it any more, nothing refuses it
    assert _promotion_objects(target) == set()
    assert _messages(target) == 7
    # The live store's capture is its own business: the restore did not touch it.
    assert changelog.file_state(str(live)).capture_triggers > 0


def test_a_plain_backup_reports_no_promotion(tmp_path: Path) -> None:
    live = _liteshift_store(tmp_path / "live.db")
    manifest = create_backup(f"sqlite://{live}", tmp_path / "backups")
    result = restore_backup(tmp_path / "backups" / manifest.id, f"sqlite://{tmp_path / 'r.db'}")
    assert result.promotion is None


@pytest.fixture
def promoted_backup(tmp_path: Path) -> Path:
    live = _liteshift_store(tmp_path / "live.db")
    changelog.install(str(live))
    with changelog.write_transaction(str(live)) as conn:
        changelog.mark_promoted(conn, "postgresql://app:***@db/app")
    manifest = create_backup(
        f"sqlite://{live}", tmp_path / "backups", BackupOptions(compression="zstd")
    )
    return tmp_path / "backups" / manifest.id


def test_a_promoted_backup_is_refused_and_the_target_untouched(
    promoted_backup: Path, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh.db"
    with pytest.raises(
        RestoreRefused, match=r"promoted to postgresql://app:\*\*\*@db/app at .*--as-sqlite-primary"
    ):
        restore_backup(promoted_backup, f"sqlite://{fresh}")
    assert not fresh.exists()
    assert [p.name for p in tmp_path.iterdir() if "fresh" in p.name] == []  # no temp file left
    existing = _liteshift_store(tmp_path / "existing.db")
    before = existing.read_bytes()
    with pytest.raises(RestoreRefused, match="--as-sqlite-primary"):
        restore_backup(promoted_backup, f"sqlite://{existing}", force=True)
    assert existing.read_bytes() == before


def test_as_sqlite_primary_makes_a_promoted_backup_the_primary_again(
    promoted_backup: Path, tmp_path: Path
) -> None:
    target = _liteshift_store(tmp_path / "old.db")
    result = restore_backup(
        promoted_backup, f"sqlite://{target}", force=True, as_sqlite_primary=True
    )
    assert result.promotion is not None and result.promotion.demoted
    assert result.promotion.state.meta is not None
    assert result.promotion.state.meta.target == "postgresql://app:***@db/app"
    assert "SQLite is the primary again" in result.promotion.describe()
    assert _promotion_objects(target) == set()
    assert changelog.file_state(str(target)) == changelog.CaptureState(None, 0, 0, None)
    _write(target, "after rollback")  # the fence is gone
    assert _messages(target) == 6


def test_as_sqlite_primary_on_a_plain_backup_changes_nothing_else(tmp_path: Path) -> None:
    live = _liteshift_store(tmp_path / "live.db")
    manifest = create_backup(f"sqlite://{live}", tmp_path / "backups")
    target = tmp_path / "r.db"
    result = restore_backup(
        tmp_path / "backups" / manifest.id, f"sqlite://{target}", as_sqlite_primary=True
    )
    assert result.promotion is None
    assert _messages(target) == _messages(live) == 5
