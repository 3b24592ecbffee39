"""Retention really deletes, logs each deletion, and never deletes the newest good backup."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from liteshift.backup import (
    BackupOptions,
    InvalidBackupOption,
    create_backup,
    list_backups,
    parse_age,
    prune_backups,
)
from liteshift.backup.manifest import MANIFEST_NAME


def test_keep_last_3_of_5(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = tmp_path / "backups"
    ids = [create_backup(f"sqlite://{store_file[0]}", dest).id for _ in range(5)]
    assert len(list(dest.iterdir())) == 5
    with caplog.at_level(logging.INFO, logger="liteshift.backup"):
        result = prune_backups(dest, keep_last=3)
    on_disk = sorted(p.name for p in dest.iterdir())
    assert len(on_disk) == 3
    assert on_disk == sorted(ids[2:])
    assert sorted(d.path.name for d in result.deleted) == sorted(ids[:2])
    deleted_logs = [r for r in caplog.records if getattr(r, "event", None) == "backup_deleted"]
    assert sorted(r.backup for r in deleted_logs) == sorted(ids[:2])  # type: ignore[attr-defined]
    assert all("keep-last 3" in r.reason for r in deleted_logs)  # type: ignore[attr-defined]


def _age(dest: Path, name: str, days: int) -> None:
    """Make a backup look `days` old by rewriting its manifest's created_at."""
    path = dest / name / MANIFEST_NAME
    text = path.read_text()
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = json.loads(text)
    data["created_at"] = stamp
    path.write_text(json.dumps(data))


def test_max_age_spares_the_newest(store_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    dest = tmp_path / "b"
    ids = [create_backup(f"sqlite://{store_file[0]}", dest).id for _ in range(3)]
    for days, name in zip((30, 20, 10), ids, strict=True):
        _age(dest, name, days)
    result = prune_backups(dest, max_age=parse_age("7d"))
    # Everything is older than 7 days, but the newest backup is never aged away.
    assert [p.name for p in dest.iterdir()] == [ids[2]]
    assert len(result.deleted) == 2


def test_incomplete_and_abandoned_are_deleted(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    good = create_backup(f"sqlite://{store_file[0]}", dest).id
    broken = create_backup(f"sqlite://{store_file[0]}", dest).id
    (dest / broken / MANIFEST_NAME).write_text('{"format_version": 1, "id"')
    fresh_partial = dest / ".partial-local-20990101T000000Z-abcdef"
    old_partial = dest / ".partial-local-20000101T000000Z-abcdef"
    fresh_partial.mkdir()
    old_partial.mkdir()
    old = time.time() - 3 * 86400
    os.utime(old_partial, (old, old))
    entries = list_backups(dest)
    assert {e.name: e.complete for e in entries} == {good: True, broken: False}
    result = prune_backups(dest, keep_last=5)
    assert {d.path.name for d in result.deleted} == {broken, old_partial.name}
    assert sorted(p.name for p in dest.iterdir()) == sorted([good, fresh_partial.name])


def test_retention_is_per_datastore(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    for name in ("alpha", "alpha", "beta"):
        create_backup(f"sqlite://{store_file[0]}", dest, BackupOptions(datastore=name))
    prune_backups(dest, keep_last=1)
    assert sorted(p.name.split("-")[0] for p in dest.iterdir()) == ["alpha", "beta"]


def test_dry_run_deletes_nothing(store_file: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    dest = tmp_path / "b"
    for _ in range(2):
        create_backup(f"sqlite://{store_file[0]}", dest)
    result = prune_backups(dest, keep_last=1, dry_run=True)
    assert len(result.deleted) == 1
    assert len(list(dest.iterdir())) == 2


@pytest.mark.parametrize(
    ("keep_last", "max_age", "match"),
    [(None, None, "keep-last, max-age or both"), (0, None, "at least 1")],
)
def test_bad_retention_is_refused(
    tmp_path: Path, keep_last: int | None, max_age: timedelta | None, match: str
) -> None:
    with pytest.raises(InvalidBackupOption, match=match):
        prune_backups(tmp_path, keep_last=keep_last, max_age=max_age)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("7d", 604800)])
def test_parse_age(text: str, seconds: int) -> None:
    assert parse_age(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "7", "7y", "-1d", "0d"])
def test_parse_age_refuses(text: str) -> None:
    with pytest.raises(InvalidBackupOption):
        parse_age(text)


def test_backups_of_a_newer_liteshift_are_left_alone(
    store_file: tuple[Path, dict[str, int]], tmp_path: Path
) -> None:
    dest = tmp_path / "b"
    newer = create_backup(f"sqlite://{store_file[0]}", dest).id
    create_backup(f"sqlite://{store_file[0]}", dest)
    path = dest / newer / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["format_version"] = 2
    path.write_text(json.dumps(data))
    (entry,) = [e for e in list_backups(dest) if e.name == newer]
    assert (entry.complete, entry.newer_format) == (False, True)
    result = prune_backups(dest, keep_last=1)
    assert result.deleted == []
    assert len(list(dest.iterdir())) == 2
