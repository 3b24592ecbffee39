"""The canonical forms of the checksum are identical on SQLite (Python) and Postgres (SQL)."""

from __future__ import annotations

import json
import struct

import psycopg
import pytest

from liteshift.store.checksum import (
    jsonb_text,
    parse_json,
    postgres_checksum,
    row_hash,
    vector_hex,
)
from liteshift.store.dbapi import format_ts
from liteshift.store.transfer import Column, TableSpec
from tests.promotion.conftest import EDGE_JSON, EDGE_TIMES

JSON_TEXTS = [
    *(json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for v in EDGE_JSON),
    '{"b":1,"a":2,"ccc":3,"dd":4}',
    '{"n":[1.0,1.50,1E+2,1e-7,-0.0,-0,0.000,123456789012345678901234567890.5]}',
    '{"s":"\\u00e9\\u0007\\b\\f\\n\\r\\t\\/\\"\\\\ \\ud83c\\udf89"}',
    '[1, {"x": "y"}, null]',
    '{"fast":[-0.5,100.0,0.0,-0.000,1.25,-10.01,142.71428571428572]}',
    '"just a string"',
    "42",
    '{"é":1,"z":2,"aa":3}',
]


@pytest.mark.parametrize("raw", JSON_TEXTS)
def test_jsonb_text_is_what_postgres_prints(postgres_dsn: str, raw: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("SELECT %s::jsonb::text", (raw,)).fetchone()
    assert row is not None
    assert jsonb_text(parse_json(raw)) == row[0]


def test_vector_hex_is_float4send(postgres_dsn: str) -> None:
    values = (0.0, -0.0, 1e-45, 3.4028234663852886e38, -1.5, 0.1)
    blob = struct.pack(f"<{len(values)}f", *values)
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT string_agg(encode(float4send(e), 'hex'), '' ORDER BY i) "
            "FROM unnest(%s::real[]) WITH ORDINALITY AS u(e, i)",
            ("{" + ",".join(map(repr, struct.unpack(f"<{len(values)}f", blob))) + "}",),
        ).fetchone()
    assert row is not None and vector_hex(blob) == row[0]


def test_timestamps_print_the_same(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        for when in EDGE_TIMES:
            row = conn.execute(
                "SELECT to_char(%s::timestamptz AT TIME ZONE 'UTC', "
                '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\')',
                (when,),
            ).fetchone()
            assert row is not None and row[0] == format_ts(when)


def test_postgres_checksum_matches_the_python_row_hash(postgres_dsn: str) -> None:
    spec = TableSpec("t", "id", (Column("id", "text"), Column("n", "integer", nullable=True)))
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("CREATE TABLE t (id text PRIMARY KEY, n integer)")
        conn.execute("INSERT INTO t VALUES ('a', 1), ('béta', NULL), ('', -5)")
        conn.commit()
        result = postgres_checksum(conn, spec)
    expected = sum(row_hash(text) for text in ("1:a\x1f1", "4:béta\x1f\\N", "0:\x1f-5")) % 2**64
    assert (result.rows, result.checksum) == (3, expected)
    assert len(result.hex) == 16


def test_row_hash_is_order_independent_and_sensitive() -> None:
    rows = ["1:a", "1:b", "1:c"]
    assert sum(map(row_hash, rows)) == sum(map(row_hash, reversed(rows)))
    assert row_hash("1:a") != row_hash("1:b")
