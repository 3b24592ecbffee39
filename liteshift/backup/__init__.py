"""Backups: online, verified at creation, restorable by one call; retention that really deletes.

The API the CLI, the sidecar's `/admin/backups` and the operator's schedule call:

    manifest = create_backup("sqlite:///data/liteshift.db", Path("/backups"), BackupOptions(...))
    entries = list_backups(Path("/backups"))
    verify_backup(Path("/backups") / manifest.id, full=False)
    restore_backup(Path("/backups") / manifest.id, "sqlite:///data/restored.db")
    prune_backups(Path("/backups"), keep_last=7, max_age=parse_age("30d"))

Every long call takes `progress(phase, done, total)`. Errors are `BackupError` subclasses
(plus the store's BadURL/StoreUnavailable), each one readable line.
"""

from __future__ import annotations

from liteshift.backup.compression import Compression, parse_compression
from liteshift.backup.create import BackupOptions, create_backup
from liteshift.backup.errors import (
    BackupError,
    BackupNotFound,
    ChecksumMismatch,
    EngineMismatch,
    IntegrityCheckFailed,
    InvalidBackupOption,
    InvalidManifest,
    RestoreRefused,
    RowCountMismatch,
    SchemaTooNew,
    ToolFailed,
)
from liteshift.backup.layout import BackupEntry, list_backups
from liteshift.backup.manifest import Manifest, read_manifest
from liteshift.backup.progress import Progress
from liteshift.backup.restore import RestoreResult, restore_backup
from liteshift.backup.retention import PruneResult, parse_age, prune_backups
from liteshift.backup.verify import VerifyResult, verify_backup

__all__ = [
    "BackupEntry",
    "BackupError",
    "BackupNotFound",
    "BackupOptions",
    "ChecksumMismatch",
    "Compression",
    "EngineMismatch",
    "IntegrityCheckFailed",
    "InvalidBackupOption",
    "InvalidManifest",
    "Manifest",
    "Progress",
    "PruneResult",
    "RestoreRefused",
    "RestoreResult",
    "RowCountMismatch",
    "SchemaTooNew",
    "ToolFailed",
    "VerifyResult",
    "create_backup",
    "list_backups",
    "parse_age",
    "parse_compression",
    "prune_backups",
    "read_manifest",
    "restore_backup",
    "verify_backup",
]
