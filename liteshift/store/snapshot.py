"""Every piece of SQL the backup needs: consistent copies, integrity checks, row counts, versions.

SQLite: `online_backup` copies a live database with APSW's backup API from a separate,
read-only connection that holds ONE read transaction for the whole copy. In WAL mode that
snapshot never blocks the writer, and because the source never starts a new read transaction
between steps, SQLite never notices foreign writes and never restarts the copy (a stepped
backup without the held transaction restarts on every write of another connection and, under
a 1 ms write cadence, never finishes). The price: the WAL cannot be checkpointed past the
snapshot while the copy runs, so it grows; a passive checkpoint afterwards lets it restart.
The destination runs with `synchronous=OFF` and no journal, and is fsynced once at the end:
it is a fresh private file, so crash safety during the copy buys nothing. It is flushed in
small steps while it is written (`PacedFlush`), so the live database's commits never wait
behind a large unflushed copy.

Postgres: `export_snapshot` opens a REPEATABLE READ transaction, exports its snapshot for
`pg_dump --snapshot`, and reads row counts and the schema version inside that same snapshot, so
the manifest describes exactly what the dump contains.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import apsw
import psycopg
from psycopg import sql

from liteshift.store.errors import StoreUnavailable
from liteshift.store.paced_flush import PacedFlush

#: `progress(bytes_done, bytes_total)`, called after each step of an online copy.
PageProgress = Callable[[int, int], None]

#: Pages copied per backup step: 4 MiB with 4 KiB pages. Small enough for a smooth progress
#: bar, large enough that the per-step overhead is negligible.
PAGES_PER_STEP = 1024

#: Largest memory map for reading copies and the backup's source (SQLite caps it at its
#: compile-time SQLITE_MAX_MMAP_SIZE).
MMAP_BYTES = 1 << 40

_MIGRATIONS_TABLE = "schema_migrations"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of `PRAGMA quick_check` / `integrity_check`: `ok` and SQLite's own messages."""

    kind: str
    ok: bool
    messages: tuple[str, ...]

    @property
    def summary(self) -> str:
        return "ok" if self.ok else "; ".join(self.messages[:5])


# --- SQLite ---------------------------------------------------------------------------------


def online_backup(
    source: Path,
    dest: Path,
    *,
    busy_timeout_ms: int = 5000,
    progress: PageProgress | None = None,
) -> None:
    """Copy the live SQLite database `source` into the new file `dest`, consistently.

    Writers on other connections keep going (WAL mode); the copy is one snapshot. `dest`
    must not exist. The copy is fsynced before returning. Raises StoreUnavailable.
    """
    if not source.is_file():
        raise StoreUnavailable(f"sqlite file {source}", "no such file")
    if dest.exists():
        raise StoreUnavailable(f"sqlite file {dest}", "backup destination already exists")
    try:
        src = apsw.Connection(str(source), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise StoreUnavailable(f"sqlite file {source}", str(exc)) from exc
    try:
        src.set_busy_timeout(busy_timeout_ms)
        if MMAP_BYTES:
            src.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        dst = apsw.Connection(str(dest), flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        try:
            _private_destination(dst)
            # The read transaction pins one snapshot for every step (see the module docstring).
            src.execute("BEGIN")
            try:
                src.execute("SELECT count(*) FROM sqlite_schema").get  # noqa: B018 - starts it
                page_size = int(src.execute("PRAGMA page_size").get)
                with dst.backup("main", src, "main") as backup, PacedFlush(dest) as flush:
                    while not backup.done:
                        backup.step(PAGES_PER_STEP)
                        flush.advance()
                        if progress is not None:
                            total = backup.page_count
                            progress((total - backup.remaining) * page_size, total * page_size)
            finally:
                src.execute("COMMIT")
        finally:
            dst.close()
    except (apsw.Error, OSError) as exc:
        raise StoreUnavailable(f"sqlite file {source}", f"online backup failed: {exc}") from exc
    finally:
        src.close()
    _fsync_file(dest)


def _private_destination(conn: apsw.Connection) -> None:
    # Connection hooks (apsw.bestpractice) may have switched a fresh file to WAL; a 1 GB copy
    # through a WAL file would write everything twice.
    conn.execute("PRAGMA journal_mode=OFF").get  # noqa: B018
    conn.execute("PRAGMA synchronous=OFF")
    mode = conn.execute("PRAGMA journal_mode").get
    if str(mode).lower() != "off":
        raise StoreUnavailable("backup destination", f"journal_mode stayed {mode!r}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_copy(path: Path) -> apsw.Connection:
    """Open a backup copy read-only and immutable: no -wal/-shm files, no locks, no writes."""
    uri = "file:" + str(path.resolve()) + "?immutable=1"
    try:
        conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
        # Memory-mapped reads halve the time of a quick_check over a large file (no read()
        # call and copy per page); safe here: nobody writes the copy while it is checked.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    except apsw.Error as exc:
        raise StoreUnavailable(f"sqlite file {path}", str(exc)) from exc
    return conn


def check_integrity(conn: apsw.Connection, *, full: bool = False) -> CheckResult:
    """`PRAGMA quick_check` (O(N), no index cross-check) or, with `full`, `integrity_check`."""
    kind = "integrity_check" if full else "quick_check"
    try:
        rows = [str(row[0]) for row in conn.execute(f"PRAGMA {kind}")]
    except apsw.Error as exc:
        # A damaged header or page 1 makes the pragma itself fail: that is a failed check.
        return CheckResult(kind, False, (f"{type(exc).__name__}: {exc}",))
    return CheckResult(kind, rows == ["ok"], tuple(rows))


def sqlite_tables(conn: apsw.Connection) -> list[str]:
    """Names of the ordinary tables (virtual tables excluded, their shadow tables included)."""
    return [
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "AND upper(coalesce(sql, '')) NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
        )
    ]


def sqlite_row_counts(conn: apsw.Connection) -> dict[str, int]:
    """Rows per ordinary table, read in one transaction so the counts are mutually consistent."""
    counts: dict[str, int] = {}
    try:
        with conn:
            for name in sqlite_tables(conn):
                quoted = '"' + name.replace('"', '""') + '"'
                counts[name] = int(conn.execute(f"SELECT count(*) FROM {quoted}").get)
    except apsw.Error as exc:
        raise StoreUnavailable(conn.filename, f"cannot count rows: {exc}") from exc
    return counts


def sqlite_schema_version(conn: apsw.Connection) -> int | None:
    """Highest applied migration in `schema_migrations`, or None when the table is absent/empty."""
    try:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (_MIGRATIONS_TABLE,)
        ).get
        if not exists:
            return None
        version = conn.execute(f"SELECT max(CAST(version AS INTEGER)) FROM {_MIGRATIONS_TABLE}").get
    except apsw.Error as exc:
        raise StoreUnavailable(conn.filename, f"cannot read the schema version: {exc}") from exc
    return None if version is None else int(version)


def database_in_use(path: Path) -> bool:
    """Whether another connection (any process) has the SQLite file `path` open.

    Tries an exclusive lock without waiting: a process that has the database open, even idle
    in WAL mode, makes that fail at once. A file that is damaged or not a database at all is
    not "in use" (nothing can be using it as a database).
    """
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READWRITE)
    except (apsw.BusyError, apsw.LockedError):
        return True
    except apsw.Error:
        return False
    try:
        conn.set_busy_timeout(0)
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except (apsw.BusyError, apsw.LockedError):
        return True
    except apsw.Error:
        return False
    finally:
        conn.close()
    return False


# --- Postgres -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresSnapshot:
    """An exported snapshot and what it contains; valid while `export_snapshot` is open."""

    snapshot_id: str
    row_counts: dict[str, int]
    schema_version: int | None


def _pg_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1, 2"
    ).fetchall()
    return [(str(schema), str(name)) for schema, name in rows]


def _pg_counts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for schema, name in _pg_tables(conn):
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(name)
        )
        row = conn.execute(query).fetchone()
        key = name if schema == "public" else f"{schema}.{name}"
        counts[key] = int(row[0]) if row else 0  # type: ignore[call-overload]
    return counts


def _pg_schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int | None:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (_MIGRATIONS_TABLE,)).fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute(
        sql.SQL("SELECT max(CAST(version AS bigint)) FROM {}").format(
            sql.Identifier(_MIGRATIONS_TABLE)
        )
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])  # type: ignore[call-overload]


def _pg_connect(dsn: str, display: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreUnavailable(display, str(exc).strip().splitlines()[0]) from exc


@contextmanager
def export_snapshot(dsn: str, display: str) -> Iterator[PostgresSnapshot]:
    """Hold a REPEATABLE READ snapshot open, exported for `pg_dump --snapshot`, with its counts."""
    conn = _pg_connect(dsn, display)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        snapshot = PostgresSnapshot(
            snapshot_id=str(row[0]),
            row_counts=_pg_counts(conn),
            schema_version=_pg_schema_version(conn),
        )
        yield snapshot
        conn.rollback()
    except psycopg.Error as exc:
        raise StoreUnavailable(display, str(exc).strip().splitlines()[0]) from exc
    finally:
        conn.close()


def pg_row_counts(dsn: str, display: str) -> dict[str, int]:
    """Rows per ordinary table of every non-system schema (`schema.table` outside public)."""
    with _pg_connect(dsn, display) as conn:
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _pg_counts(conn)
        except psycopg.Error as exc:
            raise StoreUnavailable(display, str(exc).strip().splitlines()[0]) from exc


def pg_user_tables(dsn: str, display: str) -> list[str]:
    """Ordinary tables outside the system schemas: an empty list means an empty database."""
    with _pg_connect(dsn, display) as conn:
        try:
            return [
                name if schema == "public" else f"{schema}.{name}"
                for schema, name in _pg_tables(conn)
            ]
        except psycopg.Error as exc:
            raise StoreUnavailable(display, str(exc).strip().splitlines()[0]) from exc
