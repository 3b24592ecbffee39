"""The offline, one-time promotion path: readiness → loose-data scan → copy → verify.

What `liteshift promote --from sqlite:///… --to postgresql://…` runs. One SQLite read
snapshot serves the scan (which also computes the SQLite checksums) and the copy, so the
verification compares exactly the rows that were copied, even if something else writes to the
file meanwhile (those later writes are NOT copied: stop writers first, or use the online
promotion of the operator).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from liteshift.promotion.copy import CopyResult, copy_data
from liteshift.promotion.loose import ScanResult, scan
from liteshift.promotion.readiness import ReadinessReport, check_readiness
from liteshift.promotion.verify import VerificationReport, verify
from liteshift.store.transfer import BATCH_ROWS, DOMAIN_TABLES, SqliteSnapshot

#: `progress(phase, table, done, total)`; phase is "scan" or "copy".
PhaseProgress = Callable[[str, str, int, int], None]


@dataclass
class OfflineReport:
    readiness: ReadinessReport
    scan: ScanResult | None = None
    copy: CopyResult | None = None
    verification: VerificationReport | None = None
    #: Wall-clock seconds per phase: readiness, scan, copy, verify.
    seconds: dict[str, float] = field(default_factory=dict)


def promote_offline(
    sqlite_path: str,
    dsn: str,
    *,
    dry_run: bool = False,
    batch_rows: int = BATCH_ROWS,
    progress: PhaseProgress | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> OfflineReport:
    """Run the offline promotion; raises ReadinessFailed, LooseData, TargetNotEmpty,
    VerificationFailed, StoreUnavailable. A dry run stops after the scan and raises nothing
    for failed checks or loose data: the report says what a real run would refuse."""

    def phase(name: str) -> float:
        if on_phase:
            on_phase(name)
        return time.perf_counter()

    with SqliteSnapshot(sqlite_path) as snapshot:
        started = phase("readiness")
        readiness = check_readiness(
            dsn,
            sqlite_version=snapshot.schema_version(),
            sqlite_bytes=Path(sqlite_path).stat().st_size,
            migrate=not dry_run,
        )
        report = OfflineReport(readiness)
        report.seconds["readiness"] = time.perf_counter() - started
        if not dry_run:
            readiness.raise_if_failed()

        started = phase("scan")
        report.scan = scan(
            snapshot,
            DOMAIN_TABLES,
            progress=(lambda t, d, n: progress("scan", t, d, n)) if progress else None,
        )
        report.seconds["scan"] = time.perf_counter() - started
        if dry_run:
            return report
        report.scan.report.raise_if_loose()

        started = phase("copy")
        report.copy = copy_data(
            snapshot,
            dsn,
            DOMAIN_TABLES,
            batch_rows=batch_rows,
            progress=(lambda t, d, n: progress("copy", t, d, n)) if progress else None,
            canonical_tables=report.scan.canonical_tables,
        )
        report.seconds["copy"] = time.perf_counter() - started

    started = phase("verify")
    report.verification = verify(dsn, report.scan.checksums, DOMAIN_TABLES)
    report.seconds["verify"] = time.perf_counter() - started
    report.verification.raise_if_failed()
    return report
