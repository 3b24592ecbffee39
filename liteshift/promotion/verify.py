"""Verification: row counts and checksums of every table, equal on both engines.

The SQLite side comes from the loose-data scan of the snapshot that was copied; the Postgres
side is one aggregate query per table (`liteshift.store.checksum`), run on parallel
connections because each is CPU-bound inside its own backend.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from liteshift.promotion.errors import VerificationFailed
from liteshift.store.checksum import TableChecksum, postgres_checksum
from liteshift.store.connect import pg_connect
from liteshift.store.transfer import DOMAIN_TABLES, TableSpec

PARALLEL = 2


@dataclass(frozen=True)
class TableVerification:
    table: str
    source: TableChecksum
    target: TableChecksum

    @property
    def ok(self) -> bool:
        return (self.source.rows, self.source.checksum) == (self.target.rows, self.target.checksum)

    def describe(self) -> str:
        if self.source.rows != self.target.rows:
            return (
                f"{self.table}: {self.source.rows} rows in SQLite, {self.target.rows} in Postgres"
            )
        if not self.ok:
            return (
                f"{self.table}: checksum {self.source.hex} in SQLite, {self.target.hex} in "
                "Postgres (same row count, different values)"
            )
        return f"{self.table}: {self.source.rows} rows, checksum {self.source.hex}"


@dataclass(frozen=True)
class VerificationReport:
    tables: tuple[TableVerification, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def failed(self) -> list[str]:
        return [t.table for t in self.tables if not t.ok]

    def raise_if_failed(self) -> None:
        bad = [t for t in self.tables if not t.ok]
        if bad:
            raise VerificationFailed(
                [t.table for t in bad],
                "verification failed: " + "; ".join(t.describe() for t in bad),
            )


def verify(
    dsn: str,
    source: Mapping[str, TableChecksum],
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
    *,
    parallel: int = PARALLEL,
) -> VerificationReport:
    """Compare `source` (SQLite checksums) with Postgres at `dsn`, table by table."""
    started = time.perf_counter()

    def one(spec: TableSpec) -> TableChecksum:
        conn = pg_connect(dsn)
        try:
            return postgres_checksum(conn, spec)
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        targets = list(pool.map(one, tables))
    results = tuple(
        TableVerification(spec.name, source[spec.name], target)
        for spec, target in zip(tables, targets, strict=True)
    )
    return VerificationReport(results, time.perf_counter() - started)
