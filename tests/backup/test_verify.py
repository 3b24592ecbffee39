"""verify_backup refuses damaged backups with a reason a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liteshift.backup import (
    ChecksumMismatch,
    IntegrityCheckFailed,
    InvalidManifest,
    Manifest,
    RowCountMismatch,
    create_backup,
    read_manifest,
    verify_backup,
)
from liteshift.backup.compression import sha256_file
from liteshift.backup.manifest import MANIFEST_NAME
from tests.backup.conftest import flip_byte


@pytest.fixture
def backup_dir(store_file: tuple[Path, dict[str, int]], tmp_path: Path) -> Path:
    manifest = create_backup(f"sqlite://{store_file[0]}", tmp_path / "backups")
    return tmp_path / "backups" / manifest.id


def _rewrite_manifest(directory: Path, **changes: object) -> None:
    data = read_manifest(directory).to_json() | changes
    (directory / MANIFEST_NAME).write_text(json.dumps(data))


def test_intact_backup_passes_quick_and_full(backup_dir: Path) -> None:
    assert verify_backup(backup_dir).check == "quick_check"
    result = verify_backup(backup_dir / MANIFEST_NAME, full=True)
    assert (result.check, result.check_result) == ("integrity_check", "ok")


def test_one_flipped_byte_is_refused(backup_dir: Path) -> None:
    flip_byte(backup_dir / "data.db", 4096 * 2 + 100)
    with pytest.raises(ChecksumMismatch, match=r"is damaged: manifest says sha256 [0-9a-f]{64}"):
        verify_backup(backup_dir)


def test_truncated_data_file_is_refused(backup_dir: Path) -> None:
    data = backup_dir / "data.db"
    data.write_bytes(data.read_bytes()[:8192])
    with pytest.raises(ChecksumMismatch, match="bytes"):
        verify_backup(backup_dir)


def test_truncated_manifest_is_refused(backup_dir: Path) -> None:
    path = backup_dir / MANIFEST_NAME
    path.write_text(path.read_text()[:120])
    with pytest.raises(InvalidManifest, match="not valid JSON"):
        verify_backup(backup_dir)


def test_missing_field_is_named(backup_dir: Path) -> None:
    data = read_manifest(backup_dir).to_json()
    del data["sha256"]
    (backup_dir / MANIFEST_NAME).write_text(json.dumps(data))
    with pytest.raises(InvalidManifest, match="'sha256' is missing"):
        verify_backup(backup_dir)


def test_corruption_with_a_matching_checksum_fails_the_integrity_check(backup_dir: Path) -> None:
    # Someone "fixed" the checksum after the damage: SQLite's own check still catches it.
    data = backup_dir / "data.db"
    size = data.stat().st_size
    with open(data, "r+b") as handle:  # zero the last pages: b-tree pages vanish
        handle.seek(size - 4 * 4096)
        handle.write(b"\x00" * 4 * 4096)
    _rewrite_manifest(backup_dir, sha256=sha256_file(data))
    with pytest.raises(IntegrityCheckFailed, match="quick_check failed"):
        verify_backup(backup_dir)


def test_row_counts_must_match_the_manifest(backup_dir: Path) -> None:
    counts = dict(read_manifest(backup_dir).row_counts)
    counts["messages"] += 1
    _rewrite_manifest(backup_dir, row_counts=counts)
    with pytest.raises(RowCountMismatch, match="messages: manifest 501, found 500"):
        verify_backup(backup_dir)


def test_manifest_round_trips(backup_dir: Path) -> None:
    manifest = read_manifest(backup_dir)
    again = Manifest.from_json(json.loads(manifest.dumps()), backup_dir)
    assert again == manifest
