"""Retention: keep the newest N backups and/or those younger than a maximum age; delete the rest.

Rules, per datastore (one directory may hold several):
- a complete backup is deleted when it is not among the newest `keep_last`, or older than
  `max_age` — except the newest complete backup, which is never deleted (backups that stopped
  arriving must not age the last good one away);
- an incomplete backup (no readable manifest or no data file) is deleted — but one whose
  manifest comes from a newer liteshift (higher format_version) is left alone;
- an abandoned `.partial-*` directory older than `PARTIAL_GRACE` is deleted.
Every deletion really happens (`layout.remove_tree`: large files shrink away in steps, so a live
database on the same disk does not stall) and is logged, one structured line each.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from liteshift.backup.durable import fsync_path
from liteshift.backup.errors import InvalidBackupOption
from liteshift.backup.layout import BackupEntry, list_backups, partial_dirs, remove_tree

log = logging.getLogger("liteshift.backup")

#: A backup still being written keeps its `.partial-*` directory at least this long.
PARTIAL_GRACE = timedelta(hours=24)

_AGE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """`90s`, `15m`, `12h`, `7d`, `2w` → timedelta; raises InvalidBackupOption."""
    match = _AGE.match(text)
    if not match or int(match[1]) <= 0:
        raise InvalidBackupOption("max age", f"{text!r} is not like 12h, 7d or 2w")
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


@dataclass(frozen=True)
class Deletion:
    """One directory prune removed, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class PruneResult:
    kept: list[BackupEntry]
    deleted: list[Deletion]


def _owner(entry: BackupEntry) -> str:
    if entry.manifest is not None:
        return entry.manifest.datastore
    return entry.name.rsplit("-", 2)[0]


def plan_prune(
    entries: list[BackupEntry],
    *,
    keep_last: int | None,
    max_age: timedelta | None,
    now: datetime,
) -> tuple[list[BackupEntry], list[Deletion]]:
    """Decide, without touching the disk, which backups go (see the module docstring)."""
    if keep_last is None and max_age is None:
        raise InvalidBackupOption("retention", "give keep-last, max-age or both")
    if keep_last is not None and keep_last < 1:
        raise InvalidBackupOption("keep-last", "must be at least 1")
    groups: dict[str, list[BackupEntry]] = defaultdict(list)
    for entry in entries:
        groups[_owner(entry)].append(entry)
    kept: list[BackupEntry] = []
    deleted: list[Deletion] = []
    for group in groups.values():
        complete = sorted(
            (e for e in group if e.complete), key=lambda e: (e.created_at, e.name), reverse=True
        )
        for rank, entry in enumerate(complete):
            reason = None
            if keep_last is not None and rank >= keep_last:
                reason = f"beyond keep-last {keep_last}"
            elif max_age is not None and now - entry.created_at > max_age:
                reason = f"older than {max_age}"
            if reason is None or rank == 0:
                kept.append(entry)
            else:
                deleted.append(Deletion(entry.path, reason))
        for entry in group:
            if entry.newer_format:
                kept.append(entry)
            elif not entry.complete:
                deleted.append(Deletion(entry.path, f"incomplete: {entry.problem}"))
    kept.sort(key=lambda e: (e.created_at, e.name))
    return kept, deleted


def prune_backups(
    directory: Path,
    *,
    keep_last: int | None = None,
    max_age: timedelta | None = None,
    datastore: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Apply retention to the backups in `directory` (optionally one datastore's only)."""
    now = now or datetime.now(UTC)
    kept, deleted = plan_prune(
        list_backups(directory, datastore), keep_last=keep_last, max_age=max_age, now=now
    )
    for path in partial_dirs(directory):
        age = now - datetime.fromtimestamp(path.stat().st_mtime, UTC)
        if age > PARTIAL_GRACE:
            deleted.append(Deletion(path, f"abandoned partial backup ({age} old)"))
    if not dry_run:
        for deletion in deleted:
            remove_tree(deletion.path)
            log.info(
                "backup deleted",
                extra={
                    "event": "backup_deleted",
                    "backup": deletion.path.name,
                    "path": str(deletion.path),
                    "reason": deletion.reason,
                },
            )
        if deleted:
            fsync_path(directory)
    return PruneResult(kept, deleted)
