"""Typed errors of the backup layer: each carries fields, and `str()` is one readable line."""

from __future__ import annotations

from pathlib import Path

from liteshift.errors import LiteshiftError


class BackupError(LiteshiftError):
    """Base class of every error the backup layer raises on purpose."""

    code = "backup_error"


class BackupNotFound(BackupError):
    """`path` is neither a backup directory nor a manifest inside one."""

    code = "backup_not_found"

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"no backup at {path}")


class InvalidManifest(BackupError):
    """The manifest is missing, truncated, or not one this liteshift can read."""

    code = "invalid_manifest"

    def __init__(self, path: Path, reason: str, *, newer_format: bool = False) -> None:
        self.path = path
        self.reason = reason
        #: Written by a newer liteshift: intact as far as we know, just not readable here.
        self.newer_format = newer_format
        super().__init__(f"backup manifest {path} is not usable: {reason}")


class ChecksumMismatch(BackupError):
    """The backup file's size or sha256 differs from the manifest: it was damaged."""

    code = "checksum_mismatch"

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"backup file {path} is damaged: manifest says {expected}, file has {actual}"
        )


class IntegrityCheckFailed(BackupError):
    """SQLite's `quick_check`/`integrity_check` (or `pg_restore --list`) rejected the data."""

    code = "integrity_check_failed"

    def __init__(self, path: Path, kind: str, detail: str) -> None:
        self.path = path
        self.kind = kind
        self.detail = detail
        super().__init__(f"{kind} failed on {path}: {detail}")


class RowCountMismatch(BackupError):
    """Per-table row counts of the data differ from those the manifest recorded."""

    code = "row_count_mismatch"

    def __init__(self, where: str, differences: dict[str, tuple[int | None, int | None]]) -> None:
        self.where = where
        self.differences = differences
        shown = ", ".join(
            f"{table}: manifest {want}, found {got}"
            for table, (want, got) in sorted(differences.items())[:5]
        )
        super().__init__(f"row counts of {where} differ from the manifest ({shown})")


class SchemaTooNew(BackupError):
    """The backup comes from a schema version newer than this liteshift's migrations."""

    code = "schema_too_new"

    def __init__(self, backup_version: int, known_version: int | None) -> None:
        self.backup_version = backup_version
        self.known_version = known_version
        super().__init__(
            f"backup has schema version {backup_version} but this liteshift knows only up to "
            f"{known_version}; restore it with a newer liteshift"
        )


class RestoreRefused(BackupError):
    """Restore would replace data it was not told to replace, or data in use."""

    code = "restore_refused"

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"refusing to restore into {target}: {reason}")


class EngineMismatch(BackupError):
    """A SQLite backup restored into Postgres or the reverse (use promotion for that)."""

    code = "engine_mismatch"

    def __init__(self, backup_engine: str, target_engine: str) -> None:
        self.backup_engine = backup_engine
        self.target_engine = target_engine
        super().__init__(
            f"a {backup_engine} backup cannot be restored into {target_engine}; "
            "restore into the same engine (moving SQLite to Postgres is `liteshift promote`)"
        )


class ToolFailed(BackupError):
    """An external tool (pg_dump, pg_restore) is missing or exited non-zero."""

    code = "tool_failed"

    def __init__(self, tool: str, reason: str) -> None:
        self.tool = tool
        self.reason = reason
        super().__init__(f"{tool} failed: {reason}")


class InvalidBackupOption(BackupError):
    """An option value the backup layer cannot use (bad datastore name, retention, codec)."""

    code = "invalid_option"

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"invalid {option}: {reason}")
