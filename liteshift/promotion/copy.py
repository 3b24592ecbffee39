"""The copy step: every domain table from a SQLite read snapshot into an empty, migrated Postgres.

The snapshot must already have passed the loose-data scan (`liteshift.promotion.loose`): the
copy converts types explicitly and would fail on a value the scan reports. One Postgres
transaction covers the whole copy, so a failure leaves the target empty for a retry.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from liteshift.promotion.errors import TargetNotEmpty
from liteshift.store.connect import pg_connect
from liteshift.store.transfer import (
    BATCH_ROWS,
    DOMAIN_TABLES,
    Progress,
    SqliteSnapshot,
    TableSpec,
    copy_tables,
    target_counts,
)


@dataclass(frozen=True)
class CopyResult:
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def copy_data(
    snapshot: SqliteSnapshot,
    dsn: str,
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    canonical_tables: Collection[str] = (),
) -> CopyResult:
    """Copy `tables` from `snapshot` into Postgres at `dsn`; raises TargetNotEmpty,
    StoreUnavailable. `canonical_tables`: see `copy_tables`."""
    conn = pg_connect(dsn)
    try:
        counts = target_counts(conn, tables)
        if any(counts.values()):
            raise TargetNotEmpty(counts)
        started = time.perf_counter()
        rows = copy_tables(
            snapshot,
            conn,
            tables,
            batch_rows=batch_rows,
            progress=progress,
            canonical_tables=canonical_tables,
        )
        return CopyResult(rows, time.perf_counter() - started)
    finally:
        conn.close()
