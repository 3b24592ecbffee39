"""Opening raw connections: APSW with `apsw.bestpractice`, psycopg with UTC sessions.

Turns every "cannot open" into `StoreUnavailable` with one readable line.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import apsw
import apsw.bestpractice
import psycopg

from liteshift.store.errors import BadURL, StoreUnavailable
from liteshift.store.urls import DatabaseURL, redact

SYNCHRONOUS_MODES = ("FULL", "NORMAL")
_applied = False
_applied_lock = threading.Lock()


def apply_bestpractice() -> None:
    """Apply `apsw.bestpractice.recommended` once per process.

    It registers connection hooks (WAL, foreign keys on, double-quoted strings off, query planner
    `optimize`, recursive triggers, a 100 ms busy timeout we then raise) and forwards SQLite's
    log to Python logging.
    """
    global _applied  # noqa: PLW0603 - process-wide, like the hooks it installs
    with _applied_lock:
        if not _applied:
            apsw.bestpractice.apply(apsw.bestpractice.recommended)
            _applied = True


def sqlite_connect(
    path: str,
    *,
    create: bool = True,
    query_only: bool = False,
    busy_timeout_ms: int = 5000,
    synchronous: str = "FULL",
) -> apsw.Connection:
    """An APSW connection to `path` (WAL, bestpractice, busy timeout); raises StoreUnavailable."""
    apply_bestpractice()
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
        conn.pragma("synchronous", synchronous)
        if query_only:
            conn.pragma("query_only", True)
        # Touch the schema so a non-database file fails here, not on first use.
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
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
        raise BadURL(redact(dsn), _first_line(exc)) from exc
    except psycopg.Error as exc:
        raise StoreUnavailable(redact(dsn), _first_line(exc)) from exc
    pg_configure(conn)
    return conn


def check_url(url: DatabaseURL) -> None:
    """Reject a malformed Postgres DSN early (BadURL) without connecting."""
    if url.engine == "postgres":
        try:
            psycopg.conninfo.conninfo_to_dict(url.target)
        except psycopg.ProgrammingError as exc:
            raise BadURL(redact(url.target), _first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
