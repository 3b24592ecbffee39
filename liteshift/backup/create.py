"""`create_backup`: copy, check, hash, (compress), manifest — then, and only then, publish."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import liteshift
from liteshift.backup import postgres, sqlite
from liteshift.backup import progress as phases
from liteshift.backup.compression import SUFFIX, Compression, compress_file, sha256_file
from liteshift.backup.durable import fsync_path, remove_tree_gently
from liteshift.backup.layout import PARTIAL_PREFIX, new_backup_id, validate_name
from liteshift.backup.manifest import Manifest
from liteshift.backup.progress import Progress, silent
from liteshift.store.urls import parse_url

log = logging.getLogger("liteshift.backup")


@dataclass(frozen=True)
class BackupOptions:
    """How to take a backup; every field has a safe default."""

    #: Names recorded in the manifest and used in the directory name.
    datastore: str = "local"
    namespace: str = "default"
    compression: Compression = "none"
    #: `integrity_check` (≈20x slower) instead of `quick_check` on SQLite copies.
    full_check: bool = False


def create_backup(
    source_url: str,
    dest_dir: Path,
    options: BackupOptions | None = None,
    progress: Progress = silent,
) -> Manifest:
    """Back up the live store at `source_url` into a new directory under `dest_dir`.

    SQLite: online copy (writers keep going) + quick_check/integrity_check; Postgres:
    `pg_dump -Fc` from one snapshot + `pg_restore --list`. The manifest is written last and
    the directory appears under its final name only when complete. Returns the manifest.
    Raises BadURL, StoreUnavailable, IntegrityCheckFailed, ToolFailed, InvalidBackupOption.
    """
    options = options or BackupOptions()
    url = parse_url(source_url)
    validate_name("datastore", options.datastore)
    validate_name("namespace", options.namespace)
    started = time.monotonic()
    created_at = datetime.now(UTC)
    backup_id = new_backup_id(options.datastore, created_at)
    dest_dir.mkdir(parents=True, exist_ok=True)
    partial = dest_dir / f"{PARTIAL_PREFIX}{backup_id}"
    partial.mkdir()
    try:
        if url.engine == "sqlite":
            raw = partial / "data.db"
            facts, digest = sqlite.copy_and_check(
                Path(url.target),
                raw,
                full=options.full_check,
                want_hash=options.compression == "none",
                progress=progress,
            )
            check, check_result = facts.check.kind, facts.check.summary
            row_counts, schema_version = facts.row_counts, facts.schema_version
            extra: dict[str, object] = {}
        else:
            raw = partial / "data.dump"
            progress(phases.DUMP, 0, None)
            snap = postgres.dump(
                url.target, url.display(), raw, compress=options.compression == "none"
            )
            dumped = raw.stat().st_size
            progress(phases.DUMP, dumped, dumped)
            entries = postgres.check_archive(raw)
            check, check_result = "pg_restore --list", "ok"
            row_counts, schema_version = snap.row_counts, snap.schema_version
            extra = {"archive_entries": entries}
            digest = None
        if options.compression == "none":
            data = raw
            size = data.stat().st_size
            if digest is None:
                digest = sha256_file(data, lambda d: progress(phases.HASH, d, size))
        else:
            data = raw.with_name(raw.name + SUFFIX[options.compression])
            total = raw.stat().st_size
            extra["uncompressed_size"] = total
            size, digest = compress_file(
                raw, data, options.compression, lambda d: progress(phases.COMPRESS, d, total)
            )
            raw.unlink()
        manifest = Manifest(
            id=backup_id,
            datastore=options.datastore,
            namespace=options.namespace,
            engine=url.engine,
            created_at=created_at,
            file=data.name,
            size=size,
            sha256=digest,
            compression=options.compression,
            schema_version=schema_version,
            row_counts=row_counts,
            liteshift_version=liteshift.__version__,
            check=check,
            check_result=check_result,
            duration_seconds=round(time.monotonic() - started, 3),
            extra=extra,
        )
        manifest.write(partial)
        final = dest_dir / backup_id
        os.rename(partial, final)
        fsync_path(dest_dir)
    except BaseException:
        try:
            remove_tree_gently(partial)
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    log.info(
        "backup created",
        extra={
            "event": "backup_created",
            "backup": backup_id,
            "path": str(final),
            "engine": url.engine,
            "size": size,
            "duration_seconds": manifest.duration_seconds,
        },
    )
    return manifest
