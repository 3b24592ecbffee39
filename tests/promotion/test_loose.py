"""Loose SQLite data is reported per row before anything moves, and the promotion refuses.

The loose values are written with raw APSW, bypassing the store's validation, as an older
version, a hand-written script or another tool could have done.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import apsw
import psycopg
import pytest

from liteshift.promotion.errors import LooseData
from liteshift.promotion.loose import LooseDataReport, RowChecker, fast_row, scan
from liteshift.promotion.offline import promote_offline
from liteshift.store.checksum import SEPARATOR
from liteshift.store.migrations import migrations_dir
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot, TableSpec

TS = "2026-01-01T00:00:00.000000Z"


def _legacy_schema() -> str:
    """The core tables as a forgiving legacy file would have them: no STRICT, no NOT NULL."""
    ddl = (migrations_dir() / "0001_core.sqlite.up.sql").read_text()
    ddl = ddl.replace(") STRICT;", ");")
    return re.sub(r"(?<!PRIMARY KEY) NOT NULL", "", ddl)


def test_every_kind_of_loose_value_is_reported_per_row(tmp_path: Path) -> None:
    path = tmp_path / "legacy.db"
    conn = apsw.Connection(str(path))
    conn.execute(_legacy_schema())
    vec = struct.pack("<3f", 0.1, 0.2, 0.3)
    nan = struct.pack("<3f", 0.1, float("nan"), 0.3)
    conn.execute("INSERT INTO messages VALUES ('ok', 'c', 'user', NULL, 'fine', '{}', ?)", (TS,))
    conn.execute("INSERT INTO messages VALUES ('m-null', 'c', 'user', NULL, NULL, '{}', ?)", (TS,))
    conn.execute(
        "INSERT INTO messages VALUES ('m-utf8', 'c', 'user', NULL, CAST(x'41ff42' AS TEXT), "
        "'{}', ?)",
        (TS,),
    )
    conn.execute(
        "INSERT INTO messages VALUES ('m-nul', 'c', 'user', NULL, CAST(x'610062' AS TEXT), "
        "'{}', ?)",
        (TS,),
    )
    conn.execute(
        "INSERT INTO messages VALUES ('m-when', 'c', 'user', NULL, 'x', '{}', 'yesterday')"
    )
    conn.execute(
        "INSERT INTO proposals VALUES ('p-dup', NULL, 'k', '{\"a\":1,\"a\":2}', 'pending', "
        "NULL, ?, NULL)",
        (TS,),
    )
    conn.execute("INSERT INTO events VALUES ('e-nan', 't', NULL, '{\"x\":NaN}', ?)", (TS,))
    conn.execute("INSERT INTO events VALUES ('e-bad', 't', NULL, '{\"x\":', ?)", (TS,))
    conn.execute("INSERT INTO events VALUES ('e-zero', 't', NULL, '{\"x\":\"\\u0000\"}', ?)", (TS,))
    conn.execute(
        "INSERT INTO embeddings VALUES ('v-text', 'message', 'o', 'm', 'three', ?, ?)", (vec, TS)
    )
    conn.execute("INSERT INTO embeddings VALUES ('v-dim', 'message', 'o', 'm', 4, ?, ?)", (vec, TS))
    conn.execute("INSERT INTO embeddings VALUES ('v-nan', 'message', 'o', 'm', 3, ?, ?)", (nan, TS))
    conn.execute("INSERT INTO etl_cursors VALUES ('c-naive', 'p', '2026-01-01 10:00:00')")
    conn.execute("INSERT INTO etl_cursors VALUES ('c-year', 'p', '2026-02-30T00:00:00.000000Z')")
    conn.execute("INSERT INTO etl_cursors VALUES ('c-offset', 'p', '2026-01-01T10:00:00+02:00')")
    conn.execute(  # invalid UTF-8 in the very first row and then two rows in a row
        "INSERT INTO agent_messages VALUES ('a-first', 'c', CAST(x'80' AS TEXT), NULL, 'x', "
        "'{}', ?)",
        (TS,),
    )
    conn.execute(
        "INSERT INTO agent_messages VALUES ('a-second', 'c', 'bot', NULL, CAST(x'e282' AS TEXT), "
        "'{}', ?)",
        (TS,),
    )
    conn.execute(
        "INSERT INTO agent_messages VALUES ('a-blob', 'c', 'bot', NULL, x'0102', '{}', ?)", (TS,)
    )
    conn.close()

    with SqliteSnapshot(str(path)) as snapshot:
        result = scan(snapshot)
    found = {(v.table, v.key, v.column): v.reason for v in result.report.values}
    expected = {
        ("messages", "m-null", "content"): "NULL, but the Postgres column is NOT NULL",
        ("messages", "m-utf8", "content"): "invalid UTF-8 at byte 1",
        ("messages", "m-nul", "content"): "NUL character",
        ("messages", "m-when", "created_at"): "not an ISO-8601 timestamp",
        ("proposals", "p-dup", "payload"): "duplicate JSON key 'a'",
        ("events", "e-nan", "payload"): "JSON NaN",
        ("events", "e-bad", "payload"): "not valid JSON",
        ("events", "e-zero", "payload"): "\\u0000",
        ("embeddings", "v-text", "dimension"): "text value 'three' in an integer column",
        ("embeddings", "v-dim", "vector"): "3 values, but the row's dimension is 4",
        ("embeddings", "v-nan", "vector"): "NaN or Infinity",
        ("etl_cursors", "c-naive", "updated_at"): "with a UTC offset",
        ("etl_cursors", "c-year", "updated_at"): "not an ISO-8601 timestamp",
        ("agent_messages", "a-first", "agent"): "invalid UTF-8 at byte 0",
        ("agent_messages", "a-second", "content"): "invalid UTF-8 at byte 0",
        ("agent_messages", "a-blob", "content"): "blob value \"x'0102'\" in a text column",
    }
    assert set(found) == set(expected), set(found) ^ set(expected)
    for key, reason in expected.items():
        assert reason in found[key], (key, found[key])
    assert result.report.total == len(expected)
    assert not result.report.ok
    # The offset timestamp is not loose: it is converted to UTC explicitly.
    assert ("etl_cursors", "c-offset", "updated_at") not in found
    with pytest.raises(LooseData, match=r"16 value\(s\) SQLite accepted"):
        result.report.raise_if_loose()


def test_promotion_refuses_loose_data_before_any_row_moves(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    conn = apsw.Connection(str(filled_sqlite))
    # STRICT tables still take these: SQLite never validates UTF-8 or JSON.
    conn.execute(
        "UPDATE messages SET content = CAST(x'c328' AS TEXT) WHERE rowid = 5; "
        'UPDATE events SET payload = \'{"k":1,"k":1}\' WHERE rowid = 7'
    )
    keys = {
        "messages": conn.execute("SELECT id FROM messages WHERE rowid = 5").fetchall()[0][0],
        "events": conn.execute("SELECT id FROM events WHERE rowid = 7").fetchall()[0][0],
    }
    conn.close()

    dry = promote_offline(str(filled_sqlite), postgres_dsn, dry_run=True)
    assert dry.scan is not None and dry.scan.report.total == 2
    assert {(v.table, v.key, v.column) for v in dry.scan.report.values} == {
        ("messages", keys["messages"], "content"),
        ("events", keys["events"], "payload"),
    }
    assert dry.copy is None

    with pytest.raises(LooseData) as info:
        promote_offline(str(filled_sqlite), postgres_dsn)
    assert "2 value(s)" in str(info.value)
    with psycopg.connect(postgres_dsn) as pg:
        for spec in DOMAIN_TABLES:
            assert pg.execute(f"SELECT count(*) FROM {spec.name}").fetchone() == (0,)


def _checked_text(spec: TableSpec, values: tuple[object, ...]) -> bytes | None:
    types = [
        {str: "text", bytes: "blob", int: "integer", float: "real", type(None): "null"}[type(v)]
        for v in values
    ]
    canonical = RowChecker(spec).check(types, values, LooseDataReport())
    return None if canonical is None else SEPARATOR.join(canonical).encode("utf-8")


_TABLES = {spec.name: spec for spec in DOMAIN_TABLES}
_VEC = struct.pack("<3f", 0.1, -2.5, 3e38)


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("messages", ("m", "c", "user", None, "fine é ✓", '{"b":1,"a":[1.5,{"dd":1,"c":2}]}', TS)),
        ("messages", ("m", "c", "user", "ana", "", "{}", TS)),
        ("messages", ("m", "c", "user", None, "x", '{"é":1,"z":2,"ab":3}', TS)),
        (
            "messages",
            ("m", "c", "user", None, "x", '{"n":1e400,"m":-0.0,"k":12345678901234567890}', TS),
        ),
        ("messages", ("m", "c", "user", None, "x", '{"a":1,"a":2}', TS)),
        ("messages", ("m", "c", "user", None, "x", '{"a":NaN}', TS)),
        ("messages", ("m", "c", "user", None, "x", '{"a":"\\u0000"}', TS)),
        ("messages", ("m", "c", "user", None, "x", '{"a":"\\ud800"}', TS)),
        ("messages", ("m", "c", "user", None, "x", '{"a":1e999999}', TS)),
        ("messages", ("m", "c", "user", None, "x", "[1,", TS)),
        ("messages", ("m", "c", "user", None, "x", ' {"b": [1, 2], "a": 1.0} ', TS)),
        ("messages", ("m", "c", "user", None, "x", '{"a":1} x', TS)),
        ("messages", ("m", "c", "user", None, "x", '"just text"', TS)),
        ("messages", ("m", "c", "user", None, "x", "", TS)),
        (
            "messages",
            (
                "m",
                "c",
                "user",
                None,
                "x",
                "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
                TS,
            ),
        ),
        ("messages", ("m", "c", "user", None, "a\x00b", "{}", TS)),
        ("messages", ("m", "c", "user", None, 7, "{}", TS)),
        ("messages", ("m", "c", "user", None, None, "{}", TS)),
        ("messages", ("m", "c", "user", None, "x", "{}", "2026-02-30T00:00:00.000000Z")),
        ("messages", ("m", "c", "user", None, "x", "{}", "2026-01-01T02:00:00+02:00")),
        ("messages", ("m", "c", "user", None, "x", "{}", "2026-01-01T00:00:00")),
        ("messages", ("m", "c", "user", None, "x", "{}", TS + "\n")),
        ("proposals", ("p", None, "k", "[]", "pending", None, TS, None)),
        ("proposals", ("p", "c", "k", "[]", "pending", "why", TS, TS)),
        ("embeddings", ("e", "message", "m", "model", 3, _VEC, TS)),
        ("embeddings", ("e", "message", "m", "model", 4, _VEC, TS)),
        ("embeddings", ("e", "message", "m", "model", "3", _VEC, TS)),
        ("embeddings", ("e", "message", "m", "model", 3, _VEC[:5], TS)),
        (
            "embeddings",
            ("e", "message", "m", "model", 3, struct.pack("<3f", 1, float("inf"), 2), TS),
        ),
    ],
)
def test_fast_path_is_the_checked_path_or_defers_to_it(
    table: str, values: tuple[object, ...]
) -> None:
    """The scan's specialised row function gives the checked path's exact canonical text for
    every row it accepts; any row it declines takes the checked path, which reports it."""
    spec = _TABLES[table]
    fast = fast_row(spec)((1, *values))
    checked = _checked_text(spec, values)
    if fast is not None:
        assert fast == checked
    clean = all(isinstance(v, (str, int, bytes)) or v is None for v in values) and "NaN" not in str(
        values
    )
    if checked is not None and clean and "+02:00" not in str(values):
        # Everything clean in the store's own formats takes the fast path.
        assert fast is not None, values
