"""A tiny common face over an APSW connection and a psycopg connection.

The domain SQL (`liteshift/store/queries.py`) is written once, with `?` placeholders, against
this face; each adapter converts what must differ: placeholders, timestamps (fixed-width
ISO-8601 text on SQLite, timestamptz on Postgres), JSON (canonical text vs jsonb), vectors
(float32 BLOB vs real[]), and unique-violation errors.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import apsw
import psycopg
import psycopg.errors
from psycopg.types.json import Jsonb
from pydantic_core import from_json

from liteshift.store.models import JsonObject
from liteshift.store.validation import dump_json

Row = tuple[Any, ...]


class UniqueViolation(Exception):
    """A primary-key or unique constraint refused an insert (turned into `Conflict`)."""


class Db(Protocol):
    engine: str

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the number of rows changed; raises UniqueViolation."""
        ...

    def ts(self, value: datetime) -> Any: ...

    def ts_out(self, value: Any) -> datetime: ...

    def json(self, value: JsonObject) -> Any: ...

    def json_out(self, value: Any) -> JsonObject: ...

    def vec(self, value: tuple[float, ...]) -> Any: ...

    def vec_out(self, value: Any) -> tuple[float, ...]: ...


def format_ts(value: datetime) -> str:
    """Fixed width (years are zero-padded to 4 digits), so text order is time order."""
    # %-formatting of the fields: several times cheaper than strftime (a write formats one or
    # two timestamps inside the group-commit writer).
    v = value.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 - the fast path
        v.year,
        v.month,
        v.day,
        v.hour,
        v.minute,
        v.second,
        v.microsecond,
    )


def parse_ts(value: str) -> datetime:
    """The inverse of `format_ts`; raises ValueError for any other text."""
    # `fromisoformat` is ~30x cheaper than `strptime` (this runs once per row read). It also
    # accepts other ISO-8601 shapes, so it is used only on the exact canonical shape, which
    # it parses to the same aware UTC datetime; anything else goes through the strict parser.
    if len(value) == 27 and value[10] == "T" and value[19] == "." and value[26] == "Z":
        return datetime.fromisoformat(value)
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def pack_vector(value: tuple[float, ...]) -> bytes:
    return struct.pack(f"<{len(value)}f", *value)


def unpack_vector(value: bytes) -> tuple[float, ...]:
    return struct.unpack(f"<{len(value) // 4}f", value)


class SqliteDb:
    engine = "sqlite"

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        # One cursor reused for every statement (`conn.execute` makes a new one each time, a
        # third of a point read's cost). Each call runs its statement to the end, and a
        # SqliteDb is only ever used by one thread at a time, so uses never overlap.
        self.cursor = conn.cursor()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        # APSW rows are tuples already (no row tracer is installed on the store's connections).
        return self.cursor.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            self.cursor.execute(sql, tuple(params))
        except apsw.ConstraintError as exc:
            if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
                raise UniqueViolation(str(exc)) from exc
            raise
        return int(self.conn.changes())

    def ts(self, value: datetime) -> str:
        return format_ts(value)

    def ts_out(self, value: Any) -> datetime:
        return parse_ts(value)

    def json(self, value: JsonObject) -> str:
        return dump_json(value)

    def json_out(self, value: Any) -> JsonObject:
        # pydantic-core's parser (Rust) is several times faster than `json.loads` on the
        # canonical text `dump_json` writes, and returns the same values (ints stay ints, floats
        # are parsed to the nearest double).
        result = from_json(value)
        assert isinstance(result, dict)
        return result

    def vec(self, value: tuple[float, ...]) -> bytes:
        return pack_vector(value)

    def vec_out(self, value: Any) -> tuple[float, ...]:
        return unpack_vector(value)


def to_pg(sql: str) -> str:
    """`?` placeholders → psycopg's `%s` (the domain SQL contains no literal ? or %)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PgDb:
    engine = "postgres"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [tuple(r) for r in self.conn.execute(to_pg(sql), tuple(params)).fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            cur = self.conn.execute(to_pg(sql), tuple(params))
        except psycopg.errors.UniqueViolation as exc:
            raise UniqueViolation(str(exc)) from exc
        return cur.rowcount

    def ts(self, value: datetime) -> datetime:
        return value

    def ts_out(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def json(self, value: JsonObject) -> Jsonb:
        return Jsonb(value)

    def json_out(self, value: Any) -> JsonObject:
        assert isinstance(value, dict)
        return value

    def vec(self, value: tuple[float, ...]) -> list[float]:
        return list(value)

    def vec_out(self, value: Any) -> tuple[float, ...]:
        # real[] comes back as shortest decimal text: re-round to float32 to get the exact
        # value SQLite's BLOB holds.
        return unpack_vector(pack_vector(tuple(float(v) for v in value)))
