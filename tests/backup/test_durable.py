"""Large files are deleted in durable steps; other names of a file are never touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liteshift.backup import durable
from liteshift.backup.durable import delete_gently, remove_tree_gently

STEP = 64 * 1024


def _file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def test_a_large_file_shrinks_step_by_step_and_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "SHRINK_STEP", STEP)
    sizes: list[int] = []
    real_ftruncate = os.ftruncate

    def recording_ftruncate(fd: int, length: int) -> None:
        sizes.append(length)
        real_ftruncate(fd, length)

    monkeypatch.setattr(durable.os, "ftruncate", recording_ftruncate)
    big = _file(tmp_path / "data.db", 10 * STEP + 123)
    delete_gently(big)
    assert not big.exists()
    assert sizes == [9 * STEP + 123 - i * STEP for i in range(9)] + [123]
    assert len(sizes) == 10


def test_a_hard_linked_file_is_unlinked_without_truncating_the_other_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "SHRINK_STEP", STEP)
    big = _file(tmp_path / "data.db", 5 * STEP)
    content = big.read_bytes()
    other = tmp_path / "elsewhere.db"
    os.link(big, other)
    delete_gently(big)
    assert not big.exists()
    assert other.read_bytes() == content


def test_a_symlink_is_removed_and_its_target_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "SHRINK_STEP", STEP)
    target = _file(tmp_path / "target.db", 5 * STEP)
    link = tmp_path / "link.db"
    link.symlink_to(target)
    delete_gently(link)
    assert not link.is_symlink()
    assert target.stat().st_size == 5 * STEP


def test_a_backup_directory_is_removed_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(durable, "SHRINK_STEP", STEP)
    backup = tmp_path / "20261124T030000Z-abc"
    (backup / "nested").mkdir(parents=True)
    _file(backup / "data.db", 7 * STEP)
    _file(backup / "manifest.json", 100)
    _file(backup / "nested" / "x", 3 * STEP)
    remove_tree_gently(backup)
    assert not backup.exists()
