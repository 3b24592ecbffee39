"""The SQL of the promotion readiness checks: server facts, column types, per-table smoke tests.

Kept apart from the domain queries: these run against a Postgres that is not serving yet.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from liteshift.store.transfer import Kind, TableSpec

#: information_schema `data_type` (or `udt_name` for arrays) each logical kind must have.
POSTGRES_TYPES: dict[Kind, str] = {
    "text": "text",
    "json": "jsonb",
    "timestamp": "timestamp with time zone",
    "integer": "integer",
    "vector": "_float4",
}


def server_version(conn: psycopg.Connection[Any]) -> tuple[int, str]:
    """(`server_version_num`, `server_version`) of the connected server."""
    row = conn.execute(
        "SELECT current_setting('server_version_num')::int, current_setting('server_version')"
    ).fetchone()
    conn.rollback()
    assert row is not None
    return int(row[0]), str(row[1])


def data_directory(conn: psycopg.Connection[Any]) -> str | None:
    """The server's data directory, or None when this role may not read it."""
    try:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return None
    conn.rollback()
    return str(row[0]) if row and row[0] else None


def column_types(conn: psycopg.Connection[Any], table: str) -> dict[str, tuple[str, bool]]:
    """{column: (type as in POSTGRES_TYPES, nullable)} of `table` in the current schema."""
    rows = conn.execute(
        "SELECT column_name, CASE WHEN data_type = 'ARRAY' THEN udt_name ELSE data_type END, "
        "is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    conn.rollback()
    return {str(r[0]): (str(r[1]), bool(r[2])) for r in rows}


def smoke_test(conn: psycopg.Connection[Any], spec: TableSpec) -> None:
    """Insert, read back and delete one row of `spec`, in a transaction that is rolled back.

    Raises psycopg.Error (the caller turns it into a readiness failure) or ValueError when
    the row read back differs from the one written.
    """
    overrides = dict(spec.smoke)
    key = f"liteshift-smoke-{uuid.uuid4()}"
    now = datetime.now(UTC).replace(microsecond=0)
    values: list[Any] = []
    for column in spec.columns:
        if column.name == spec.key:
            values.append(key)
        elif column.name in overrides:
            values.append(overrides[column.name])
        elif column.kind == "text":
            values.append("liteshift smoke test")
        elif column.kind == "json":
            values.append(Jsonb({"smoke": True}))
        elif column.kind == "timestamp":
            values.append(now)
        elif column.kind == "integer":
            values.append(2)
        else:
            values.append([0.5, -1.0])
    table = sql.Identifier(spec.name)
    names = sql.SQL(", ").join(map(sql.Identifier, spec.column_names))
    with conn.transaction():
        conn.execute(
            sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                table, names, sql.SQL(", ").join(sql.Placeholder() * len(values))
            ),
            values,
        )
        row = conn.execute(
            sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(
                sql.Identifier(spec.key), table, sql.Identifier(spec.key)
            ),
            (key,),
        ).fetchone()
        if row is None or row[0] != key:
            raise ValueError(f"the row written to {spec.name} could not be read back")
        deleted = conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} = %s").format(table, sql.Identifier(spec.key)),
            (key,),
        ).rowcount
        if deleted != 1:
            raise ValueError(f"deleting the smoke row of {spec.name} removed {deleted} rows")
        raise psycopg.Rollback  # the smoke row never commits, even if DELETE did not run
