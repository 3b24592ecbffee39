"""SQLite backups: online copy, then integrity check, row counts and sha256 of the copy.

The copy is taken by `liteshift.store.snapshot.online_backup` (one held read snapshot on a
separate read-only connection: writers never wait, the copy never restarts). The check and the
hash then run in parallel on the copy: SQLite and hashlib both release the GIL, so on two cores
a verified backup costs little more than the copy itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from liteshift.backup import progress as phases
from liteshift.backup.compression import sha256_file
from liteshift.backup.errors import IntegrityCheckFailed
from liteshift.backup.progress import Progress
from liteshift.backup.rowcounts import compare_counts
from liteshift.store import snapshot
from liteshift.store.errors import StoreUnavailable
from liteshift.store.snapshot import CheckResult


@dataclass(frozen=True)
class CopyFacts:
    """What the checks found in a SQLite file."""

    check: CheckResult
    row_counts: dict[str, int]
    schema_version: int | None


def inspect_copy(path: Path, *, full: bool) -> CopyFacts:
    """Integrity check, row counts and schema version of a (non-live) SQLite file.

    Never raises for a damaged file: the failure is reported in `check`.
    """
    kind = "integrity_check" if full else "quick_check"
    try:
        conn = snapshot.open_copy(path)
    except StoreUnavailable as exc:
        return CopyFacts(CheckResult(kind, False, (exc.reason,)), {}, None)
    try:
        check = snapshot.check_integrity(conn, full=full)
        if not check.ok:
            return CopyFacts(check, {}, None)
        counts = snapshot.sqlite_row_counts(conn)
        return CopyFacts(check, counts, snapshot.sqlite_schema_version(conn))
    except StoreUnavailable as exc:
        return CopyFacts(CheckResult(kind, False, (exc.reason,)), {}, None)
    finally:
        conn.close()


def copy_and_check(
    source: Path, dest: Path, *, full: bool, want_hash: bool, progress: Progress
) -> tuple[CopyFacts, str | None]:
    """Online-copy `source` to `dest`, then check it (and hash it when `want_hash`).

    Raises IntegrityCheckFailed when the copy does not pass its check.
    """
    snapshot.online_backup(source, dest, progress=lambda d, t: progress(phases.COPY, d, t))
    size = dest.stat().st_size
    progress(phases.CHECK, 0, None)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="backup-check") as pool:
        facts_future = pool.submit(inspect_copy, dest, full=full)
        digest = sha256_file(dest, lambda d: progress(phases.HASH, d, size)) if want_hash else None
        facts = facts_future.result()
    progress(phases.CHECK, size, size)
    if not facts.check.ok:
        raise IntegrityCheckFailed(dest, facts.check.kind, facts.check.summary)
    return facts, digest


def check_restored(path: Path, *, full: bool, expected: dict[str, int]) -> CopyFacts:
    """Check a restored file and compare its row counts with the manifest's; raises on mismatch."""
    return raise_for(path, inspect_copy(path, full=full), expected)


def raise_for(path: Path, facts: CopyFacts, expected: dict[str, int]) -> CopyFacts:
    """Raise IntegrityCheckFailed or RowCountMismatch for what `inspect_copy` found at `path`."""
    if not facts.check.ok:
        raise IntegrityCheckFailed(path, facts.check.kind, facts.check.summary)
    compare_counts(str(path), expected, facts.row_counts)
    return facts
