"""Moving the domain tables from SQLite to Postgres: table specs, one read snapshot, COPY.

`DOMAIN_TABLES` describes every table the promotion copies, with the logical kind of each
column (the two engines store them differently: DESIGN.md "The domain"). `SqliteSnapshot`
holds ONE read transaction on a read-only connection, so the loose-data scan, the source
checksums and the copy all see the same rows while other connections keep writing (WAL).
Rows are read in storage (rowid) order: four times faster than key order on a 1M-row table.

`copy_tables` writes Postgres with `COPY … FROM STDIN WITH (FREEZE)` in one transaction: the
secondary indexes and the primary key are dropped first and rebuilt after the load (5.4 s vs
12.5 s for 1M rows measured in issue 6), so a crash or an error leaves the target exactly as
it was. Values are converted explicitly. A table whose values are all in canonical form (the
usual case, known from the loose-data scan) goes in binary COPY format with the binary values
computed by SQLite: JSON text behind jsonb's version byte, timestamps as integer microseconds
(Postgres parses binary rows ~25% faster). Other tables go as text: timestamps converted to
canonical ISO-8601 text that `timestamptz` parses as UTC, float32 BLOBs as `real[]` literals.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import apsw
import psycopg
from psycopg import sql

from liteshift.store.connect import sqlite_connect
from liteshift.store.errors import StoreUnavailable

Kind = Literal["text", "json", "timestamp", "integer", "vector"]

#: Rows per COPY batch: ~10 MB of 1 KB rows; bounds memory whatever the table size.
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    nullable: bool = False


@dataclass(frozen=True)
class TableSpec:
    """One domain table: its name, key column and columns in schema order."""

    name: str
    key: str
    columns: tuple[Column, ...]
    #: Values the per-table smoke test writes where a generic value breaks a CHECK.
    smoke: tuple[tuple[str, str], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, kind: Kind = "text", nullable: bool = False) -> Column:
    return Column(name, kind, nullable)


DOMAIN_TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "messages",
        "id",
        (
            _c("id"),
            _c("conversation_id"),
            _c("role"),
            _c("sender", nullable=True),
            _c("content"),
            _c("metadata", "json"),
            _c("created_at", "timestamp"),
        ),
    ),
    TableSpec(
        "proposals",
        "id",
        (
            _c("id"),
            _c("conversation_id", nullable=True),
            _c("kind"),
            _c("payload", "json"),
            _c("status"),
            _c("reason", nullable=True),
            _c("created_at", "timestamp"),
            _c("decided_at", "timestamp", nullable=True),
        ),
        smoke=(("status", "pending"),),
    ),
    TableSpec(
        "events",
        "id",
        (
            _c("id"),
            _c("type"),
            _c("subject_id", nullable=True),
            _c("payload", "json"),
            _c("created_at", "timestamp"),
        ),
    ),
    TableSpec(
        "agent_messages",
        "id",
        (
            _c("id"),
            _c("conversation_id"),
            _c("agent"),
            _c("recipient", nullable=True),
            _c("content"),
            _c("metadata", "json"),
            _c("created_at", "timestamp"),
        ),
    ),
    TableSpec(
        "embeddings",
        "id",
        (
            _c("id"),
            _c("owner_kind"),
            _c("owner_id"),
            _c("model"),
            _c("dimension", "integer"),
            _c("vector", "vector"),
            _c("created_at", "timestamp"),
        ),
    ),
    TableSpec(
        "etl_cursors",
        "name",
        (_c("name"), _c("position"), _c("updated_at", "timestamp")),
    ),
)

#: `progress(table, rows_done, rows_total)`, called after every batch.
Progress = Callable[[str, int, int], None]

_CANONICAL_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
_D2 = "[0-9][0-9]"
_TS_GLOB = f"{_D2}{_D2}-{_D2}-{_D2}T{_D2}:{_D2}:{_D2}.{_D2}{_D2}{_D2}Z"

#: 2000-01-01 UTC, Postgres' timestamp epoch, in Unix seconds.
_PG_EPOCH_UNIX = 946_684_800

#: Does a text have the canonical form (`canonical_timestamp`'s fast path, which also checks
#: the date is real)? A match object or None.
is_canonical_timestamp_text = _CANONICAL_TS.match


def canonical_timestamp(raw: str) -> str | None:
    """The store's fixed-width UTC text for a timestamp text, or None if it is not one.

    Fast path: text already in the canonical form (everything the store writes). Otherwise
    any ISO-8601 text WITH a UTC offset is converted; without an offset it is ambiguous
    (Postgres would read it in the session time zone), so None.
    """
    if _CANONICAL_TS.match(raw):
        try:
            datetime.fromisoformat(raw)
        except ValueError:
            return None
        return raw
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    try:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(27, "0")
    except (OverflowError, ValueError):
        return None


def vector_literal(blob: bytes) -> str:
    """A little-endian float32 BLOB as a Postgres `real[]` literal (shortest exact digits)."""
    values = struct.unpack(f"<{len(blob) // 4}f", blob)
    return "{" + ",".join(map(repr, values)) + "}"


class SqliteSnapshot:
    """One read transaction on a read-only connection; every read sees the same rows."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite_connect(path, create=False, query_only=True)
        try:
            self.conn.execute("BEGIN")
            # A read transaction starts at its first read: pin the snapshot now.
            self.conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
            self.tables = {
                str(r[0])
                for r in self.conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
            }
        except apsw.Error as exc:
            self.conn.close()
            raise StoreUnavailable(f"sqlite file {path}", str(exc)) from exc

    def close(self) -> None:
        with contextlib.suppress(apsw.Error):
            self.conn.execute("ROLLBACK")
        self.conn.close()

    def __enter__(self) -> SqliteSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def require(self, spec: TableSpec) -> None:
        if spec.name not in self.tables:
            raise StoreUnavailable(
                f"sqlite file {self.path}",
                f"table {spec.name} is missing; run `liteshift migrate up` on it first",
            )

    def schema_version(self) -> int:
        if "schema_migrations" not in self.tables:
            return 0
        row = self.conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def count(self, spec: TableSpec) -> int:
        self.require(spec)
        row = self.conn.execute(f"SELECT count(*) FROM {_q(spec.name)}").fetchone()
        return int(row[0]) if row else 0

    def raw_rows(
        self, spec: TableSpec, after_rowid: int | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """(rowid, c1, c2, …) in storage order, from `after_rowid` on (exclusive).

        APSW returns each value as its storage class (str, bytes, int, float, None), so the
        Python type IS `typeof()`. Iteration raises UnicodeDecodeError at a row whose text is
        not UTF-8: the caller reads that row again with `typed_row`.
        """
        self.require(spec)
        columns = ", ".join(_q(c) for c in spec.column_names)
        query = f"SELECT rowid, {columns} FROM {_q(spec.name)}"
        # The cursor itself, not a generator around it: one Python frame less per row.
        if after_rowid is None:
            return self.conn.execute(query)
        return self.conn.execute(query + " WHERE rowid > ?", (after_rowid,))

    def typed_row(self, spec: TableSpec, after_rowid: int | None) -> tuple[Any, ...] | None:
        """The first row after `after_rowid` as (rowid, typeof(c1), c1, …), text as bytes.

        The slow path for a row `raw_rows` cannot decode: invalid UTF-8 reaches the scan.
        """
        parts = ["rowid"]
        for column in spec.columns:
            name = _q(column.name)
            parts.append(f"typeof({name})")
            parts.append(
                f"CASE WHEN typeof({name}) = 'text' THEN CAST({name} AS BLOB) ELSE {name} END"
            )
        row = self.conn.execute(
            f"SELECT {', '.join(parts)} FROM {_q(spec.name)} WHERE rowid > ? LIMIT 1",
            (-(2**63) if after_rowid is None else after_rowid,),
        ).fetchone()
        return None if row is None else tuple(row)

    def timestamps_canonical(self, spec: TableSpec) -> bool:
        """True when every timestamp of `spec` is already in the store's canonical text.

        One C-speed pass (GLOB) that spares the copy a Python conversion per value; the
        values' validity was established by the loose-data scan.
        """
        columns = [c.name for c in spec.columns if c.kind == "timestamp"]
        if not columns:
            return True
        condition = " OR ".join(f"NOT ({_q(c)} GLOB '{_TS_GLOB}')" for c in columns)
        row = self.conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_q(spec.name)} WHERE {condition})"
        ).fetchone()
        return not (row and row[0])

    def binary_rows(self, spec: TableSpec) -> Iterator[tuple[Any, ...]]:
        """The columns of `spec` as binary COPY sends them, for a table whose values are all
        in canonical form (a clean scan): JSON as bytes behind the jsonb version byte 1,
        timestamps as integer microseconds since 2000-01-01 UTC (exact integer arithmetic)."""
        self.require(spec)
        parts = []
        for column in spec.columns:
            name = _q(column.name)
            if column.kind == "json":
                parts.append(f"CAST(x'01' || {name} AS BLOB)")
            elif column.kind == "timestamp":
                # 'YYYY-MM-DDTHH:MM:SS.ffffffZ': whole seconds, then the six digits.
                parts.append(
                    f"(unixepoch(substr({name}, 1, 19)) - {_PG_EPOCH_UNIX}) * 1000000"
                    f" + CAST(substr({name}, 21, 6) AS INTEGER)"
                )
            elif column.kind in ("text", "integer"):
                parts.append(name)
            else:
                raise ValueError(f"{spec.name}.{column.name}: no binary form for {column.kind}")
        return self.conn.execute(f"SELECT {', '.join(parts)} FROM {_q(spec.name)}")

    def rows(self, spec: TableSpec) -> Iterator[tuple[Any, ...]]:
        """The columns of `spec` in storage order (call after a clean scan: text decodes)."""
        self.require(spec)
        columns = ", ".join(_q(c) for c in spec.column_names)
        yield from self.conn.execute(f"SELECT {columns} FROM {_q(spec.name)}")


def quote_identifier(name: str) -> str:
    """A lower-case identifier, double-quoted for SQLite; anything else raises ValueError."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise ValueError(f"not an identifier: {name!r}")
    return '"' + name + '"'


_q = quote_identifier


# --- Postgres side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexDef:
    name: str
    definition: str


def _converters(spec: TableSpec) -> list[Callable[[Any], Any]]:
    def same(value: Any) -> Any:
        return value

    def ts(value: Any) -> Any:
        return None if value is None else canonical_timestamp(value)

    def vec(value: Any) -> Any:
        return None if value is None else vector_literal(value)

    table: dict[Kind, Callable[[Any], Any]] = {
        "text": same,
        "json": same,
        "integer": same,
        "timestamp": ts,
        "vector": vec,
    }
    return [table[c.kind] for c in spec.columns]


def target_counts(conn: psycopg.Connection[Any], tables: Sequence[TableSpec]) -> dict[str, int]:
    """Rows per table in Postgres (the target must be empty before a copy)."""
    counts: dict[str, int] = {}
    for spec in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.name))
        ).fetchone()
        counts[spec.name] = int(row[0]) if row else 0
    conn.rollback()
    return counts


def _drop_keys(conn: psycopg.Connection[Any], spec: TableSpec) -> tuple[list[IndexDef], list[str]]:
    """Drop secondary indexes and the primary key of `spec`; return what rebuilds them."""
    indexes = [
        IndexDef(str(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = %s AND NOT EXISTS ("
            "  SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname"
            "  AND c.conrelid = to_regclass(%s))",
            (spec.name, spec.name),
        ).fetchall()
    ]
    constraints = [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype IN ('p', 'u')",
            (spec.name,),
        ).fetchall()
    ]
    for index in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index.name)))
    rebuild_constraints: list[str] = []
    for name, definition in constraints:
        conn.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(spec.name), sql.Identifier(name)
            )
        )
        rebuild_constraints.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ")
            .format(sql.Identifier(spec.name), sql.Identifier(name))
            .as_string(conn)
            + definition
        )
    return indexes, rebuild_constraints


def copy_tables(
    snapshot: SqliteSnapshot,
    conn: psycopg.Connection[Any],
    tables: Sequence[TableSpec] = DOMAIN_TABLES,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
    canonical_tables: Collection[str] = (),
) -> dict[str, int]:
    """Copy every table of `tables` from the snapshot into Postgres, in ONE transaction.

    The caller has checked that the target tables are empty and the data clean (the scan).
    `canonical_tables` are those the scan found entirely in the copy's own formats
    (`ScanResult.canonical_tables`): their rows go out as read, without another pass over the
    snapshot to check the timestamps.
    Returns rows copied per table. Raises StoreUnavailable (the transaction is rolled back).
    """
    copied: dict[str, int] = {}
    try:
        with conn.transaction():
            # The load is bulk: spend memory on index builds, not on many small sorts.
            conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            for spec in tables:
                total = snapshot.count(spec)
                indexes, constraints = _drop_keys(conn, spec)
                # The table is empty (checked by the caller); truncating it in this
                # transaction allows COPY FREEZE: rows land frozen with hint bits set, so the
                # verification's scan right after does not rewrite every page.
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(spec.name)))
                copied[spec.name] = _copy_one(
                    snapshot,
                    conn,
                    spec,
                    total,
                    batch_rows=batch_rows,
                    progress=progress,
                    canonical=spec.name in canonical_tables,
                )
                for statement in constraints:
                    conn.execute(statement.encode())
                for index in indexes:
                    conn.execute(index.definition.encode())
                conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(spec.name)))
    except psycopg.Error as exc:
        raise StoreUnavailable("postgres", _first_line(exc)) from exc
    return copied


#: Binary COPY: Postgres parses rows ~25% faster than the text format (no line splitting or
#: unescaping, timestamps as integers), and the COPY is the copy phase's largest part. SQLite
#: computes the binary values (`SqliteSnapshot.binary_rows`) and psycopg's C dumpers send them
#: as they are: a binary COPY field carries no type, Postgres reads it with the column's own
#: receive function, so JSON goes out as `bytea` bytes (jsonb's version byte 1, then the
#: text) and timestamps as `int8` (timestamptz's microseconds since 2000-01-01 UTC).
_BINARY_DUMPERS: dict[Kind, str] = {
    "text": "text",
    "json": "bytea",
    "timestamp": "int8",
    "integer": "int4",
}


def _copy_one(
    snapshot: SqliteSnapshot,
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    total: int,
    *,
    batch_rows: int,
    progress: Progress | None,
    canonical: bool = False,
) -> int:
    convert = _converters(spec)
    plain = not any(c.kind == "vector" for c in spec.columns) and (
        canonical or snapshot.timestamps_canonical(spec)
    )
    # Plain tables (every value already in its Postgres text form) go in binary; the others
    # (vectors, timestamps to convert) through the text format and the converters.
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH ({}FREEZE)").format(
        sql.Identifier(spec.name),
        sql.SQL(", ").join(map(sql.Identifier, spec.column_names)),
        sql.SQL("FORMAT BINARY, " if plain else ""),
    )
    done = 0
    if progress:
        progress(spec.name, 0, total)
    with conn.cursor() as cur, cur.copy(statement) as copy:
        if plain:
            copy.set_types([_BINARY_DUMPERS[c.kind] for c in spec.columns])
        pending = 0
        for row in snapshot.binary_rows(spec) if plain else snapshot.rows(spec):
            if plain:
                copy.write_row(row)
            else:
                copy.write_row([f(v) for f, v in zip(convert, row, strict=True)])
            pending += 1
            if pending == batch_rows:
                done += pending
                pending = 0
                if progress:
                    progress(spec.name, done, total)
        done += pending
    if progress:
        progress(spec.name, done, total)
    return done


def converters(spec: TableSpec) -> list[Callable[[Any], Any]]:
    """Per column of `spec`, the conversion the copy applies to a checked SQLite value."""
    return _converters(spec)


def replay_rows(
    conn: psycopg.Connection[Any],
    spec: TableSpec,
    keys: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> tuple[int, int]:
    """Inside the caller's transaction: make the rows of `spec` with `keys` equal `rows`.

    `rows` are the current SQLite rows (columns in spec order, already checked by the
    loose-data check, text as str) of the keys that still exist; a key without a row is a
    delete. Every key is deleted, then `rows` are written with COPY and the copy's
    conversions: the same result as an upsert per present key plus a delete per absent key,
    in two statements whatever the number of keys. Returns (rows deleted, rows written).
    Raises StoreUnavailable.
    """
    convert = _converters(spec)
    try:
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(
                sql.Identifier(spec.name), sql.Identifier(spec.key)
            ),
            (list(keys),),
        )
        deleted = cur.rowcount
        if rows:
            statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
                sql.Identifier(spec.name),
                sql.SQL(", ").join(map(sql.Identifier, spec.column_names)),
            )
            with conn.cursor() as copy_cur, copy_cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row([f(v) for f, v in zip(convert, row, strict=True)])
    except psycopg.Error as exc:
        raise StoreUnavailable("postgres", _first_line(exc)) from exc
    return deleted, len(rows)


def truncate_tables(conn: psycopg.Connection[Any], tables: Sequence[TableSpec]) -> None:
    """Empty `tables` in Postgres in one transaction; raises StoreUnavailable."""
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("TRUNCATE {}").format(
                    sql.SQL(", ").join(sql.Identifier(spec.name) for spec in tables)
                )
            )
    except psycopg.Error as exc:
        raise StoreUnavailable("postgres", _first_line(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
