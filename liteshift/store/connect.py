"""Opening raw connections: APSW with `apsw.bestpractice`, psycopg with UTC sessions.

Turns every "cannot open" into `StoreUnavailable` with one readable line.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import apsw
import apsw.bestpractice
import apsw.ext
import psycopg

from liteshift.store.errors import BadURL, StoreUnavailable
from liteshift.store.urls import DatabaseURL, redact

SYNCHRONOUS_MODES = ("FULL", "NORMAL")
_logging_applied = False
_logging_lock = threading.Lock()

# `apsw.bestpractice.recommended`, split: the library-wide part (SQLite's log forwarded to
# Python logging) is applied once per process; the per-connection part is applied to each
# connection the store opens. We deliberately do not install them as global
# `apsw.connection_hooks`: those are process state any other code (a test fixture, a library)
# can replace, and the store must not lose WAL because of it, nor impose its settings on
# connections it does not own.
# Two are replaced by our own: the 100 ms busy timeout (`sqlite_connect` sets the configured
# one before anything else runs) and the switch to WAL, which needs an exclusive lock and
# meets SQLITE_BUSY without SQLite calling the busy handler when several processes open a new
# file at once (replicas migrating on start): `_enable_wal` retries it within the timeout.
_REPLACED = (apsw.bestpractice.connection_busy_timeout, apsw.bestpractice.connection_wal)
_CONNECTION_PRACTICES = tuple(
    f
    for f in apsw.bestpractice.recommended
    if f.__name__.startswith("connection_") and f not in _REPLACED
)

#: SQLite's own log, as apsw.ext.log_sqlite words it, on a named logger.
sqlite_log = logging.getLogger("liteshift.store.sqlite_log")

#: Codes SQLite logs for things the store does on purpose, not failures: SQLITE_INTERRUPT is
#: the inline-read budget stopping a long read (it is re-run in the pool), SQLITE_SCHEMA a
#: statement re-prepared after a schema change (migrations, change capture). DEBUG, not ERROR.
_EXPECTED_CODES = frozenset({apsw.SQLITE_INTERRUPT, apsw.SQLITE_SCHEMA})


def _log_sqlite(errcode: int, message: str) -> None:
    level = logging.ERROR
    if errcode & 0xFF in _EXPECTED_CODES:
        level = logging.DEBUG
    elif errcode & 0xFF in (apsw.SQLITE_WARNING, apsw.SQLITE_NOTICE):
        level = logging.WARNING
    sqlite_log.log(
        level, "SQLITE_LOG: %s (%d) %s", message, errcode, apsw.ext.result_string(errcode)
    )


def _library_logging() -> None:
    """`apsw.bestpractice.library_logging`, with the store's expected codes at DEBUG."""
    apsw.config(apsw.SQLITE_CONFIG_LOG, _log_sqlite)


_LIBRARY_PRACTICES = tuple(
    _library_logging if f is apsw.bestpractice.library_logging else f
    for f in apsw.bestpractice.recommended
    if not f.__name__.startswith("connection_")
)


def apply_bestpractice(conn: apsw.Connection) -> None:
    """Apply `apsw.bestpractice.recommended` to `conn` (and its library part once per process).

    Per connection: WAL, foreign keys on, double-quoted strings off, query planner `optimize`,
    recursive triggers.
    """
    global _logging_applied  # noqa: PLW0603 - process-wide, like SQLite's log it configures
    with _logging_lock:
        if not _logging_applied:
            for practice in _LIBRARY_PRACTICES:
                practice()
            _logging_applied = True
    for practice in _CONNECTION_PRACTICES:
        try:
            practice(conn)
        except apsw.BusyError:
            # `optimize` may run ANALYZE, a write that can meet SQLITE_BUSY without the busy
            # handler being called (another connection is mid-transaction). Statistics are
            # an optimisation: skip them this time rather than fail the open.
            if practice is not apsw.bestpractice.connection_optimize:
                raise


def _enable_wal(conn: apsw.Connection, timeout_seconds: float) -> str:
    """Switch `conn`'s database to WAL, retrying a busy lock until the timeout; return the mode."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            return str(conn.pragma("journal_mode", "wal"))
        except apsw.BusyError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def sqlite_connect(
    path: str,
    *,
    create: bool = True,
    query_only: bool = False,
    busy_timeout_ms: int = 5000,
    synchronous: str = "FULL",
) -> apsw.Connection:
    """An APSW connection to `path` (WAL, bestpractice, busy timeout); raises StoreUnavailable."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise StoreUnavailable(f"sqlite file {path}", "synchronous must be FULL or NORMAL")
    target = Path(path)
    if not target.parent.is_dir():
        raise StoreUnavailable(f"sqlite file {path}", f"directory {target.parent} does not exist")
    if not create and not target.exists():
        raise StoreUnavailable(f"sqlite file {path}", "the file does not exist")
    flags = apsw.SQLITE_OPEN_READWRITE | (apsw.SQLITE_OPEN_CREATE if create else 0)
    try:
        conn = apsw.Connection(path, flags=flags)
        conn.set_busy_timeout(busy_timeout_ms)
        mode = _enable_wal(conn, busy_timeout_ms / 1000) if not query_only else "wal"
        apply_bestpractice(conn)
        conn.pragma("synchronous", synchronous)
        if query_only:
            conn.pragma("query_only", True)
        # Touch the schema so a non-database file fails here, not on first use.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
        # Readers and the writer rely on WAL (readers never block the writer); a file system
        # without shared-memory support would silently stay in rollback-journal mode.
        if mode != "wal":
            conn.close()
            reason = f"cannot enable WAL (journal_mode={mode})"
            raise StoreUnavailable(f"sqlite file {path}", reason)
    except apsw.Error as exc:
        raise StoreUnavailable(f"sqlite file {path}", str(exc)) from exc
    return conn


def pg_configure(conn: psycopg.Connection[Any]) -> None:
    """Every Postgres session in UTC, so timestamptz values come back as UTC datetimes."""
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


def pg_connect(dsn: str, *, timeout: int = 5) -> psycopg.Connection[Any]:
    """One psycopg connection; raises BadURL, StoreUnavailable."""
    try:
        conn = psycopg.connect(dsn, connect_timeout=timeout)
    except psycopg.ProgrammingError as exc:
        raise BadURL(redact(dsn), _first_line(exc, dsn)) from exc
    except psycopg.Error as exc:
        raise StoreUnavailable(redact(dsn), _first_line(exc, dsn)) from exc
    pg_configure(conn)
    return conn


def check_url(url: DatabaseURL) -> None:
    """Reject a malformed Postgres DSN early (BadURL) without connecting."""
    if url.engine == "postgres":
        try:
            psycopg.conninfo.conninfo_to_dict(url.target)
        except psycopg.ProgrammingError as exc:
            raise BadURL(redact(url.target), _first_line(exc, url.target)) from exc


def _first_line(exc: BaseException, dsn: str) -> str:
    """The error's first line, with the DSN redacted: libpq quotes a malformed URL back,
    password and all."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line.replace(dsn, redact(dsn)) if dsn else line
