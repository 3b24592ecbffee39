"""`verify_backup`: is this backup intact and restorable? Size, sha256, then the data itself."""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from liteshift.backup import postgres, sqlite
from liteshift.backup import progress as phases
from liteshift.backup.compression import decompress_file, sha256_file
from liteshift.backup.errors import ChecksumMismatch
from liteshift.backup.layout import resolve_backup
from liteshift.backup.manifest import Manifest, read_manifest
from liteshift.backup.progress import Progress, silent


@dataclass(frozen=True)
class VerifyResult:
    """A backup that passed: which check ran, and its outcome."""

    path: Path
    manifest: Manifest
    check: str
    check_result: str


def verify_checksum(directory: Path, manifest: Manifest, progress: Progress = silent) -> Path:
    """Size and sha256 of the data file against the manifest; returns the data file's path."""
    data = directory / manifest.file
    if not data.is_file():
        raise ChecksumMismatch(data, f"a file of {manifest.size} bytes", "no file")
    size = data.stat().st_size
    if size != manifest.size:
        raise ChecksumMismatch(data, f"{manifest.size} bytes", f"{size} bytes")
    digest = sha256_file(data, lambda d: progress(phases.HASH, d, size))
    if digest != manifest.sha256:
        raise ChecksumMismatch(data, f"sha256 {manifest.sha256}", f"sha256 {digest}")
    return data


def verify_backup(
    path: Path, *, full: bool = False, work_dir: Path | None = None, progress: Progress = silent
) -> VerifyResult:
    """Verify a backup directory (or its manifest.json) end to end.

    Manifest readable → size and sha256 match → SQLite: `quick_check` (`full`:
    `integrity_check`) and row counts equal the manifest; Postgres: `pg_restore --list` parses
    the archive. Compressed SQLite backups are decompressed into `work_dir` (default: the
    system temp directory) first. Raises InvalidManifest, ChecksumMismatch,
    IntegrityCheckFailed or RowCountMismatch with the reason.
    """
    directory = resolve_backup(path)
    manifest = read_manifest(directory)
    if manifest.engine == "sqlite" and manifest.compression == "none":
        # The checksum and SQLite's check read the same file: run them side by side (both
        # release the GIL); a checksum failure is reported first, it is the clearer reason.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup-verify") as pool:
            facts = pool.submit(sqlite.inspect_copy, directory / manifest.file, full=full)
            verify_checksum(directory, manifest, progress)
            progress(phases.CHECK, 0, None)
            checked = sqlite.raise_for(
                directory / manifest.file, facts.result(), manifest.row_counts
            )
        progress(phases.CHECK, manifest.size, manifest.size)
        return VerifyResult(directory, manifest, checked.check.kind, checked.check.summary)
    data = verify_checksum(directory, manifest, progress)
    with tempfile.TemporaryDirectory(prefix="liteshift-verify-", dir=work_dir) as tmp:
        plain = data
        if manifest.compression != "none":
            plain = Path(tmp) / data.name.rsplit(".", 1)[0]
            decompress_file(
                data,
                plain,
                manifest.compression,
                lambda d: progress(phases.RESTORE, d, manifest.size),
            )
        progress(phases.CHECK, 0, None)
        if manifest.engine == "sqlite":
            checked_file = sqlite.check_restored(plain, full=full, expected=manifest.row_counts)
            check, result = checked_file.check.kind, checked_file.check.summary
        else:
            postgres.check_archive(plain)
            check, result = "pg_restore --list", "ok"
        checked_size = plain.stat().st_size
        progress(phases.CHECK, checked_size, checked_size)
    return VerifyResult(directory, manifest, check, result)
