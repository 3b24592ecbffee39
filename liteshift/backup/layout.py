"""Where backups live on disk and how they are named, listed and found.

    DEST/<datastore>-<YYYYmmddTHHMMSSZ>-<6 hex>/{data.db[.zst|.gz] | data.dump[...], manifest.json}

A backup is built in a hidden `.partial-<id>` directory and renamed into place only once its
manifest is written, so a crash never leaves something that looks complete.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from liteshift.backup.durable import remove_tree_gently
from liteshift.backup.errors import BackupNotFound, InvalidBackupOption, InvalidManifest
from liteshift.backup.manifest import MANIFEST_NAME, Manifest, read_manifest

PARTIAL_PREFIX = ".partial-"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_BACKUP_DIR = re.compile(r"^(?P<datastore>.+)-(?P<ts>\d{8}T\d{6}Z)-(?P<rand>[0-9a-f]{6})$")


def validate_name(option: str, value: str) -> str:
    """Datastore and namespace names end up in paths: Kubernetes DNS-label syntax only."""
    if not _NAME.match(value):
        raise InvalidBackupOption(
            option, f"{value!r} must be lowercase letters, digits and '-' (at most 63)"
        )
    return value


def new_backup_id(datastore: str, now: datetime) -> str:
    """`<datastore>-<UTC timestamp>-<6 hex>`: sorts by time, unique without coordination."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{datastore}-{stamp}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class BackupEntry:
    """One backup directory found by `list_backups`: complete (with manifest) or not."""

    path: Path
    manifest: Manifest | None
    #: Why the backup is incomplete (None when complete).
    problem: str | None
    #: created_at from the manifest, else from the directory name, else its mtime.
    created_at: datetime
    #: The manifest comes from a newer liteshift: not ours to judge (or to prune).
    newer_format: bool = False

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def name(self) -> str:
        return self.path.name


def _time_of(path: Path) -> datetime:
    match = _BACKUP_DIR.match(path.name)
    if match:
        return datetime.strptime(match["ts"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _entry(path: Path) -> BackupEntry:
    try:
        manifest = read_manifest(path)
    except InvalidManifest as exc:
        return BackupEntry(path, None, exc.reason, _time_of(path), exc.newer_format)
    if not (path / manifest.file).is_file():
        return BackupEntry(path, None, f"data file {manifest.file} is missing", _time_of(path))
    return BackupEntry(path, manifest, None, manifest.created_at)


def list_backups(directory: Path, datastore: str | None = None) -> list[BackupEntry]:
    """Backups in `directory`, oldest first; in-progress `.partial-*` directories are skipped.

    A directory counts when it has a manifest or is named like a backup; `datastore` filters.
    """
    if not directory.is_dir():
        raise BackupNotFound(directory)
    entries = []
    for child in directory.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        if not (child / MANIFEST_NAME).exists() and not _BACKUP_DIR.match(child.name):
            continue
        entry = _entry(child)
        if datastore is not None:
            owner = entry.manifest.datastore if entry.manifest else None
            match = _BACKUP_DIR.match(child.name)
            if owner is None and match:
                owner = match["datastore"]
            if owner != datastore:
                continue
        entries.append(entry)
    entries.sort(key=lambda e: (e.created_at, e.name))
    return entries


def partial_dirs(directory: Path) -> list[Path]:
    """Hidden directories of backups still being written (or abandoned by a crash)."""
    return sorted(
        p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PARTIAL_PREFIX)
    )


def resolve_backup(path: Path) -> Path:
    """The backup directory for `path` (a backup directory or its manifest.json)."""
    if path.is_file() and path.name == MANIFEST_NAME:
        path = path.parent
    if not path.is_dir():
        raise BackupNotFound(path)
    return path


def remove_tree(path: Path) -> None:
    """Delete a backup directory, its large files in steps (`delete_gently`: a live database's
    commits on the same disk would otherwise wait on one big free); raises OSError if it
    cannot."""
    remove_tree_gently(path)
