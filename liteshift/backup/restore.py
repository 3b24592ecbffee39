"""`restore_backup`: verified backup in, checked database out, nothing live overwritten by accident.

Order: manifest → schema version (refuse newer than this liteshift) → target check (exists?
in use? empty?) → size + sha256 → write a temp file next to the target → integrity check and
row counts of that temp file against the manifest → remove what an online promotion left in
it (change capture; the promoted marker only when asked) → remove stale -wal/-shm → rename
into place. A failure at any step leaves the target as it was.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from liteshift.backup import postgres, sqlite
from liteshift.backup import progress as phases
from liteshift.backup.compression import decompress_file
from liteshift.backup.durable import fsync_path
from liteshift.backup.errors import (
    EngineMismatch,
    InvalidBackupOption,
    RestoreRefused,
    SchemaTooNew,
)
from liteshift.backup.layout import resolve_backup
from liteshift.backup.manifest import Manifest, read_manifest
from liteshift.backup.progress import Progress, silent
from liteshift.backup.rowcounts import compare_counts
from liteshift.backup.schema import known_schema_version
from liteshift.backup.verify import verify_checksum
from liteshift.store import changelog, snapshot
from liteshift.store.changelog import CaptureState
from liteshift.store.urls import DatabaseURL, parse_url

log = logging.getLogger("liteshift.backup")

_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class RemovedPromotion:
    """What an online promotion had left in the backup, removed from the restored file."""

    state: CaptureState
    #: The promoted marker and its fence were removed (`as_sqlite_primary`).
    demoted: bool

    def describe(self) -> str:
        """One line for the restore report."""
        meta = self.state.meta
        if self.demoted:
            where = meta.target if meta is not None and meta.target else "Postgres"
            when = meta.promoted_at if meta is not None and meta.promoted_at else "cutover"
            return (
                f"promoted marker removed: SQLite is the primary again (it was promoted to "
                f"{where} at {when}; writes made there since are not in this file)"
            )
        pending = self.state.pending_changes or 0
        return (
            "change capture of an online promotion removed "
            f"({self.state.capture_triggers} triggers, {pending} changelog rows)"
        )


@dataclass(frozen=True)
class RestoreResult:
    """A completed restore: the target, the check that passed, and the verified row counts.

    `row_counts` are the backup's, verified, less the promotion tables `promotion` removed.
    """

    target: str
    manifest: Manifest
    check: str
    row_counts: dict[str, int]
    promotion: RemovedPromotion | None = None


def check_schema(manifest: Manifest, known: int | None) -> None:
    """Refuse a backup whose schema is newer than the migrations this liteshift ships."""
    if manifest.schema_version is not None and (known is None or manifest.schema_version > known):
        raise SchemaTooNew(manifest.schema_version, known)


def restore_backup(
    backup: Path,
    target_url: str,
    *,
    force: bool = False,
    full_check: bool = False,
    as_sqlite_primary: bool = False,
    known_version: int | None = None,
    progress: Progress = silent,
) -> RestoreResult:
    """Restore `backup` into `target_url` (same engine as the backup).

    Refuses an existing target unless `force`, and a SQLite target another process has open
    even with `force`. Postgres targets must be empty unless `force` (then restored objects
    are dropped and recreated). `known_version` overrides the newest schema version this
    liteshift knows.

    A SQLite backup taken while an online promotion ran holds its change capture: it is
    removed from the restored file (`RestoreResult.promotion` says so). One taken after the
    cutover holds the promoted marker: refused (RestoreRefused) unless `as_sqlite_primary`,
    which removes the marker and its write fence so the file serves as the SQLite primary
    again (the manual rollback after a cutover).

    Raises InvalidManifest, SchemaTooNew, ChecksumMismatch, EngineMismatch, RestoreRefused,
    IntegrityCheckFailed, RowCountMismatch, ToolFailed, InvalidBackupOption, StoreUnavailable.
    """
    directory = resolve_backup(backup)
    manifest = read_manifest(directory)
    url = parse_url(target_url)
    if url.engine != manifest.engine:
        raise EngineMismatch(manifest.engine, url.engine)
    if as_sqlite_primary and url.engine != "sqlite":
        # A Postgres store never carries a promotion marker: nothing to undo there.
        raise InvalidBackupOption("--as-sqlite-primary", "it applies to SQLite backups only")
    check_schema(
        manifest,
        known_version if known_version is not None else known_schema_version(manifest.engine),
    )
    # The cheap refusals (target exists, in use, not empty) come before the checksum pass.
    if url.engine == "sqlite":
        _check_sqlite_target(Path(url.target), force)
        data = verify_checksum(directory, manifest, progress)
        result = _restore_sqlite(
            data,
            manifest,
            Path(url.target),
            full_check=full_check,
            as_sqlite_primary=as_sqlite_primary,
            progress=progress,
        )
    else:
        existing = _check_postgres_target(url, force)
        data = verify_checksum(directory, manifest, progress)
        result = _restore_postgres(data, manifest, url, bool(existing), progress)
    log.info(
        "backup restored",
        extra={
            "event": "backup_restored",
            "backup": manifest.id,
            "target": result.target,
            "promotion": None if result.promotion is None else result.promotion.describe(),
        },
    )
    return result


def _check_sqlite_target(target: Path, force: bool) -> None:
    display = f"sqlite file {target}"
    exists = target.exists() or any(Path(f"{target}{s}").exists() for s in _SIDE_FILES)
    if exists and not force:
        raise RestoreRefused(display, "it already exists; pass --force to replace it")
    if target.exists() and snapshot.database_in_use(target):
        raise RestoreRefused(display, "another process has it open; stop the sidecar, then restore")
    if not target.parent.is_dir():
        raise RestoreRefused(display, f"directory {target.parent} does not exist")


def _remove_promotion(path: Path, target: Path, as_sqlite_primary: bool) -> RemovedPromotion | None:
    state = changelog.file_state(str(path))
    if not state.present:
        return None
    if state.promoted and not as_sqlite_primary:
        meta = state.meta
        where = meta.target if meta is not None and meta.target else "Postgres"
        when = meta.promoted_at if meta is not None and meta.promoted_at else "its cutover"
        raise RestoreRefused(
            f"sqlite file {target}",
            f"the backup was taken after its store was promoted to {where} at {when}, so it "
            "refuses every write; pass --as-sqlite-primary to make SQLite the primary again "
            "(writes made on Postgres since then are not in it)",
        )
    # Capture without a promotion is dropped whole, its meta row too: a restored file must not
    # name a target as filled by its own copy, or its next promotion could empty a database
    # the original store has since been promoted to.
    removed = changelog.remove_all(str(path), promoted=as_sqlite_primary)
    return RemovedPromotion(removed, demoted=removed.promoted)


def _restore_sqlite(
    data: Path,
    manifest: Manifest,
    target: Path,
    *,
    full_check: bool,
    as_sqlite_primary: bool,
    progress: Progress,
) -> RestoreResult:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.restore-", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        decompress_file(
            data, tmp, manifest.compression, lambda d: progress(phases.RESTORE, d, manifest.size)
        )
        progress(phases.CHECK, 0, None)
        facts = sqlite.check_restored(tmp, full=full_check, expected=manifest.row_counts)
        size = tmp.stat().st_size
        progress(phases.CHECK, size, size)
        removed = _remove_promotion(tmp, target, as_sqlite_primary)
        # A stale WAL beside the new file would be replayed into it: remove before the rename.
        for suffix in _SIDE_FILES:
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, target)
        fsync_path(target.parent)
    finally:
        for suffix in ("", *_SIDE_FILES):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    counts = facts.row_counts
    if removed is not None:
        counts = {t: n for t, n in counts.items() if t not in (changelog.CHANGES, changelog.META)}
    return RestoreResult(str(target), manifest, facts.check.kind, counts, removed)


def _check_postgres_target(url: DatabaseURL, force: bool) -> list[str]:
    existing = snapshot.pg_user_tables(url.target, url.display())
    if existing and not force:
        shown = ", ".join(existing[:5])
        raise RestoreRefused(
            url.display(),
            f"the database is not empty ({shown}); pass --force to replace those tables",
        )
    return existing


def _restore_postgres(
    data: Path, manifest: Manifest, url: DatabaseURL, clean: bool, progress: Progress
) -> RestoreResult:
    display = url.display()
    with tempfile.TemporaryDirectory(prefix="liteshift-restore-") as tmp:
        archive = data
        if manifest.compression != "none":
            archive = Path(tmp) / "data.dump"
            decompress_file(
                data,
                archive,
                manifest.compression,
                lambda d: progress(phases.RESTORE, d, manifest.size),
            )
        archive_size = archive.stat().st_size
        progress(phases.RESTORE, 0, archive_size)
        postgres.restore(archive, url.target, clean=clean)
        progress(phases.RESTORE, archive_size, archive_size)
    progress(phases.CHECK, 0, None)
    counts = snapshot.pg_row_counts(url.target, display)
    # With --force, tables the backup does not know may remain: compare the backup's tables.
    compare_counts(
        display, manifest.row_counts, {t: counts[t] for t in manifest.row_counts if t in counts}
    )
    rows = sum(counts.values())
    progress(phases.CHECK, rows, rows)
    return RestoreResult(display, manifest, "row counts", counts)
