"""Change capture in the SQLite file, for the online promotion (all of its SQL lives here).

`install` adds, through its own connection, AFTER INSERT/UPDATE/DELETE triggers on every
domain table that append `(seq, table_name, key)` to `_liteshift_changes`, and creates the
`_liteshift_promotion` meta table (one row: which capture this is, which target the copy
went to, and, after cutover, the promoted marker). The store's writer keeps working: SQLite
re-prepares its statements after the schema change, and its writes fire the triggers from
then on.

Why triggers: they run inside the writing transaction, so a change is recorded exactly when
the write commits and never otherwise, whichever connection or process writes; and they are
in the file, so capture survives a crash of the process that installed it.

Positions. `seq` is `INTEGER PRIMARY KEY AUTOINCREMENT`: SQLite never hands out a number at
or below one it handed out before, even after the rows are deleted, and only one write
transaction runs at a time, so seq order is commit order. The position of a read snapshot is
the table's entry in `sqlite_sequence` read inside that snapshot (not `max(seq)`: applied
rows are pruned). A write is in the snapshot if and only if its changes have seq ≤ the
snapshot's position: "copied" and "changed after" partition the history exactly.

Keys are stored as SQLite gave them (the column has no type), so `WHERE key = ?` finds the
row again whatever its storage class. An UPDATE that changes a key records both keys.
Derived tables (the `vector_index_*` kNN index over `embeddings`) are not captured: only the
domain tables move to Postgres.

After cutover `mark_promoted` writes the marker, removes the capture triggers and installs
BEFORE triggers that refuse every write to a domain table: a promoted file is the rollback
point and must not diverge from what was promoted.

A file restored from a backup taken during or after a promotion carries all of this along:
`file_state` says what is there, and `remove_all` turns the file back into a plain SQLite
primary (the fence too, only when asked: that undoes a cutover, the manual rollback).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apsw

from liteshift.store.connect import sqlite_connect
from liteshift.store.errors import StoreUnavailable
from liteshift.store.transfer import DOMAIN_TABLES, TableSpec, quote_identifier

CHANGES = "_liteshift_changes"
META = "_liteshift_promotion"
#: Changelog rows deleted per transaction when pruning (the store's writer waits at most
#: one such short transaction for the write lock).
PRUNE_BATCH = 5_000
#: Keys per `IN (…)` list when reading rows back by key.
KEY_CHUNK = 500
PROMOTED_MESSAGE = (
    "this SQLite file was promoted to Postgres and is read-only (it is the rollback point)"
)

_OPS = ("insert", "update", "delete")


class PromotedReadOnly(StoreUnavailable):
    """A write reached a SQLite file that was promoted to Postgres (its fence refused it)."""

    code = "promoted_read_only"

    def __init__(self, target: str) -> None:
        super().__init__(target, PROMOTED_MESSAGE)


@dataclass(frozen=True)
class CaptureMeta:
    """The `_liteshift_promotion` row."""

    capture_id: str
    installed_at: str
    copy_target: str | None
    promoted_at: str | None
    target: str | None


CAPTURE_PREFIX = "_liteshift_capture_"
FENCE_PREFIX = "_liteshift_promoted_"


def _trigger_name(spec: TableSpec, op: str) -> str:
    return f"{CAPTURE_PREFIX}{spec.name}_{op}"


def _fence_name(spec: TableSpec, op: str) -> str:
    return f"{FENCE_PREFIX}{spec.name}_{op}"


def _capture_ddl(spec: TableSpec) -> list[str]:
    table = quote_identifier(spec.name)
    key = quote_identifier(spec.key)
    name = "'" + spec.name + "'"  # a checked identifier: safe as a literal
    record = f"INSERT INTO {CHANGES} (table_name, key) VALUES ({name}, "
    return [
        f"CREATE TRIGGER IF NOT EXISTS {_trigger_name(spec, 'insert')} AFTER INSERT ON {table} "
        f"BEGIN {record}NEW.{key}); END",
        f"CREATE TRIGGER IF NOT EXISTS {_trigger_name(spec, 'update')} AFTER UPDATE ON {table} "
        f"BEGIN {record}OLD.{key}); "
        f"INSERT INTO {CHANGES} (table_name, key) SELECT {name}, NEW.{key} "
        f"WHERE NEW.{key} IS NOT OLD.{key}; END",
        f"CREATE TRIGGER IF NOT EXISTS {_trigger_name(spec, 'delete')} AFTER DELETE ON {table} "
        f"BEGIN {record}OLD.{key}); END",
    ]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@contextlib.contextmanager
def write_transaction(path: str, *, busy_timeout_ms: int = 5000) -> Iterator[apsw.Connection]:
    """A connection of its own holding `BEGIN IMMEDIATE` (the write lock) until the block ends.

    Commits when the block ends normally, rolls back on an exception. Raises StoreUnavailable.
    """
    conn = sqlite_connect(path, create=False, busy_timeout_ms=busy_timeout_ms)
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            raise StoreUnavailable(
                f"sqlite file {path}", f"cannot take the write lock: {exc}"
            ) from exc
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(apsw.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except apsw.Error as exc:
            with contextlib.suppress(apsw.Error):
                conn.execute("ROLLBACK")
            raise StoreUnavailable(f"sqlite file {path}", f"commit failed: {exc}") from exc
    finally:
        conn.close()


def _sqlite_error(path: str, exc: apsw.Error) -> StoreUnavailable:
    return StoreUnavailable(f"sqlite file {path}", str(exc))


def install(path: str, tables: Sequence[TableSpec] = DOMAIN_TABLES) -> CaptureMeta:
    """Install change capture in the file at `path` (idempotent); returns the meta row.

    One write transaction: the triggers, the changelog and the meta row appear together.
    Raises StoreUnavailable (also when the file was already promoted).
    """
    try:
        with write_transaction(path) as conn:
            existing = _meta(conn)
            if existing is not None and existing.promoted_at is not None:
                raise PromotedReadOnly(f"sqlite file {path}")
            fresh = not conn.execute(
                "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (CHANGES,)
            ).fetchone()
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {CHANGES} ("
                "seq INTEGER PRIMARY KEY AUTOINCREMENT, table_name TEXT NOT NULL, key)"
            )
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {META} ("
                "id INTEGER PRIMARY KEY CHECK (id = 1), capture_id TEXT NOT NULL, "
                "installed_at TEXT NOT NULL, copy_target TEXT, promoted_at TEXT, target TEXT)"
            )
            if existing is None:
                conn.execute(
                    f"INSERT INTO {META} (id, capture_id, installed_at) VALUES (1, ?, ?)",
                    (uuid.uuid4().hex, _now()),
                )
            elif fresh:
                # A new changelog restarts the positions at 0: it is a new capture, and a
                # promotion holding a position in the old one must not take it for its own.
                conn.execute(
                    f"UPDATE {META} SET capture_id = ?, installed_at = ? WHERE id = 1",
                    (uuid.uuid4().hex, _now()),
                )
            for spec in tables:
                for statement in _capture_ddl(spec):
                    conn.execute(statement)
            meta = _meta(conn)
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    assert meta is not None
    return meta


def _meta(conn: apsw.Connection) -> CaptureMeta | None:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (META,)
    ).fetchone()
    if not exists:
        return None
    row = conn.execute(
        f"SELECT capture_id, installed_at, copy_target, promoted_at, target FROM {META} "
        "WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    capture_id, installed_at, copy_target, promoted_at, target = row
    return CaptureMeta(
        str(capture_id),
        str(installed_at),
        None if copy_target is None else str(copy_target),
        None if promoted_at is None else str(promoted_at),
        None if target is None else str(target),
    )


def read_meta(conn: apsw.Connection) -> CaptureMeta | None:
    """The meta row seen by `conn` (inside its transaction, if any), or None."""
    return _meta(conn)


def read_file_meta(path: str) -> CaptureMeta | None:
    """The meta row of the file at `path` (read-only), or None; raises StoreUnavailable."""
    conn = sqlite_connect(path, create=False, query_only=True)
    try:
        return _meta(conn)
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    finally:
        conn.close()


def installed(conn: apsw.Connection, tables: Sequence[TableSpec] = DOMAIN_TABLES) -> bool:
    """Whether every capture trigger and the changelog exist, as `conn` sees the schema."""
    wanted = {_trigger_name(spec, op) for spec in tables for op in _OPS} | {CHANGES}
    placeholders = ", ".join("?" * len(wanted))
    found = int(
        conn.execute(
            f"SELECT count(*) FROM sqlite_schema WHERE name IN ({placeholders})", tuple(wanted)
        ).get
    )
    return found == len(wanted)


def position(conn: apsw.Connection) -> int:
    """The highest seq ever committed, as seen by `conn`'s current transaction (0: none)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (CHANGES,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def changed_keys(conn: apsw.Connection, after: int, upto: int) -> dict[str, list[Any]]:
    """Distinct keys per table with a change in (after, upto], as `conn` sees them."""
    keys: dict[str, list[Any]] = {}
    for table, key in conn.execute(
        f"SELECT DISTINCT table_name, key FROM {CHANGES} WHERE seq > ? AND seq <= ?",
        (after, upto),
    ):
        keys.setdefault(str(table), []).append(key)
    return keys


def pending_changes(conn: apsw.Connection, after: int) -> int:
    """Changelog rows after `after` (changes not yet applied; a key may count several times)."""
    row = conn.execute(f"SELECT count(*) FROM {CHANGES} WHERE seq > ?", (after,)).fetchone()
    return int(row[0]) if row else 0


def set_copy_target(path: str, target: str) -> str | None:
    """Record the (redacted) target a copy is about to fill; returns the previous one."""
    try:
        with write_transaction(path) as conn:
            meta = _meta(conn)
            if meta is None:
                raise StoreUnavailable(f"sqlite file {path}", "change capture is not installed")
            conn.execute(f"UPDATE {META} SET copy_target = ? WHERE id = 1", (target,))
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    return meta.copy_target


def prune(path: str, upto: int, *, batch: int = PRUNE_BATCH) -> int:
    """Delete changelog rows with seq ≤ `upto`, `batch` rows per transaction; returns rows."""
    deleted = 0
    conn = sqlite_connect(path, create=False)
    try:
        while True:
            row = conn.execute(f"SELECT min(seq) FROM {CHANGES}").fetchone()
            low = int(row[0]) if row and row[0] is not None else None
            if low is None or low > upto:
                return deleted
            high = min(upto, low + batch - 1)
            with conn:
                conn.execute(f"DELETE FROM {CHANGES} WHERE seq <= ?", (high,))
                deleted += conn.changes()
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    finally:
        conn.close()


def _drop_capture(conn: apsw.Connection, tables: Sequence[TableSpec]) -> None:
    for spec in tables:
        for op in _OPS:
            conn.execute(f"DROP TRIGGER IF EXISTS {_trigger_name(spec, op)}")


def remove(path: str, tables: Sequence[TableSpec] = DOMAIN_TABLES, *, keep_meta: bool) -> None:
    """Drop the capture triggers and the changelog (and the meta table unless `keep_meta`).

    Idempotent. Refuses (StoreUnavailable) on a promoted file: its marker must stay.
    """
    try:
        with write_transaction(path) as conn:
            meta = _meta(conn)
            if meta is not None and meta.promoted_at is not None:
                raise PromotedReadOnly(f"sqlite file {path}")
            _drop_capture(conn, tables)
            conn.execute(f"DROP TABLE IF EXISTS {CHANGES}")
            if not keep_meta:
                conn.execute(f"DROP TABLE IF EXISTS {META}")
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc


@dataclass(frozen=True)
class CaptureState:
    """What an online promotion left in a SQLite file (`file_state`)."""

    meta: CaptureMeta | None
    #: `_liteshift_capture_*` triggers (logging every write to `_liteshift_changes`).
    capture_triggers: int
    #: `_liteshift_promoted_*` triggers (refusing every write: the promoted fence).
    fence_triggers: int
    #: Rows in `_liteshift_changes`; None when the table does not exist.
    pending_changes: int | None

    @property
    def promoted(self) -> bool:
        """The file carries the promoted marker or its fence: it is a rollback point."""
        return (self.meta is not None and self.meta.promoted_at is not None) or bool(
            self.fence_triggers
        )

    @property
    def present(self) -> bool:
        """Anything at all of a promotion is in the file."""
        return (
            self.meta is not None
            or self.capture_triggers > 0
            or self.fence_triggers > 0
            or self.pending_changes is not None
        )


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def _triggers(conn: apsw.Connection, prefix: str) -> list[str]:
    # By name, not from DOMAIN_TABLES: a file written by another liteshift version may have
    # captured other tables, and every trigger of ours must go.
    return [
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name LIKE ? ESCAPE '\\'",
            (_like_prefix(prefix),),
        )
    ]


def _quote_any(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _state(conn: apsw.Connection) -> tuple[CaptureState, list[str]]:
    has_changes = conn.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (CHANGES,)
    ).fetchone()
    pending = int(conn.execute(f"SELECT count(*) FROM {CHANGES}").get) if has_changes else None
    capture = _triggers(conn, CAPTURE_PREFIX)
    fence = _triggers(conn, FENCE_PREFIX)
    return CaptureState(_meta(conn), len(capture), len(fence), pending), capture + fence


def file_state(path: str) -> CaptureState:
    """What of an online promotion the file at `path` holds (read-only); raises StoreUnavailable."""
    conn = sqlite_connect(path, create=False, query_only=True)
    try:
        with conn:
            state, _ = _state(conn)
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    finally:
        conn.close()
    return state


def remove_all(path: str, *, promoted: bool) -> CaptureState:
    """Make the file at `path` a plain SQLite primary again; returns what was removed.

    Drops every capture trigger, the changelog and the meta table — and, only when
    `promoted` is True, the promoted marker's fence triggers. Without `promoted` a promoted
    file is refused (StoreUnavailable): undoing a cutover must be asked for explicitly,
    because writes made on the Postgres target since then are not in this file. For files
    that are not live (a restored copy, or a stopped store: the manual rollback). One write
    transaction; idempotent.
    """
    try:
        with write_transaction(path) as conn:
            state, triggers = _state(conn)
            if state.promoted and not promoted:
                raise PromotedReadOnly(f"sqlite file {path}")
            for name in triggers:
                conn.execute(f"DROP TRIGGER IF EXISTS {_quote_any(name)}")
            conn.execute(f"DROP TABLE IF EXISTS {CHANGES}")
            conn.execute(f"DROP TABLE IF EXISTS {META}")
    except apsw.Error as exc:
        raise _sqlite_error(path, exc) from exc
    return state


def mark_promoted(
    conn: apsw.Connection,
    target: str,
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
) -> str:
    """Inside the caller's write transaction: write the marker, swap capture for the fence.

    Returns promoted_at. The fence triggers refuse every later write to a domain table.
    """
    promoted_at = _now()
    conn.execute(
        f"UPDATE {META} SET promoted_at = ?, target = ? WHERE id = 1", (promoted_at, target)
    )
    if conn.changes() != 1:
        raise StoreUnavailable("sqlite file", "change capture meta row is missing")
    _drop_capture(conn, tables)
    message = "'" + PROMOTED_MESSAGE.replace("'", "''") + "'"
    for spec in tables:
        table = quote_identifier(spec.name)
        for op in _OPS:
            conn.execute(
                f"CREATE TRIGGER IF NOT EXISTS {_fence_name(spec, op)} BEFORE {op.upper()} "
                f"ON {table} BEGIN SELECT RAISE(ABORT, {message}); END"
            )
    return promoted_at


def typed_rows_by_key(
    conn: apsw.Connection, spec: TableSpec, keys: Sequence[Any]
) -> Iterator[tuple[Any, ...]]:
    """Rows of `spec` whose key is in `keys`, as (typeof(c1), c1, …) with text as bytes.

    Text comes back as bytes so invalid UTF-8 reaches the loose-data check instead of failing
    the read. Reads `KEY_CHUNK` keys per statement.
    """
    parts: list[str] = []
    for column in spec.columns:
        name = quote_identifier(column.name)
        parts.append(f"typeof({name})")
        parts.append(f"CASE WHEN typeof({name}) = 'text' THEN CAST({name} AS BLOB) ELSE {name} END")
    select = f"SELECT {', '.join(parts)} FROM {quote_identifier(spec.name)} WHERE "
    key = quote_identifier(spec.key)
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start : start + KEY_CHUNK]
        yield from conn.execute(select + f"{key} IN ({', '.join('?' * len(chunk))})", chunk)
