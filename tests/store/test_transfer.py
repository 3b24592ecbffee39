"""Transfer primitives: timestamp conversion, vector literals, the held read snapshot."""

from __future__ import annotations

import struct
from pathlib import Path

import apsw
import pytest

from liteshift.store.errors import StoreUnavailable
from liteshift.store.transfer import (
    DOMAIN_TABLES,
    SqliteSnapshot,
    canonical_timestamp,
    vector_literal,
)
from tests.promotion.conftest import fill_store


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z"),
        ("0001-01-01T00:00:00.000000Z", "0001-01-01T00:00:00.000000Z"),
        ("2026-01-01T10:00:00+02:00", "2026-01-01T08:00:00.000000Z"),
        ("2026-01-01 10:00:00.5-01:30", "2026-01-01T11:30:00.500000Z"),
        ("0001-01-01T00:30:00+01:00", None),  # before year 1 in UTC
        ("2026-01-01T10:00:00", None),  # no offset: ambiguous
        ("2026-02-30T00:00:00.000000Z", None),
        ("yesterday", None),
    ],
)
def test_canonical_timestamp(raw: str, expected: str | None) -> None:
    assert canonical_timestamp(raw) == expected


def test_vector_literal_round_trips_float32() -> None:
    values = (0.1, -0.0, 3.4028234663852886e38, 1e-45)
    blob = struct.pack("<4f", *values)
    literal = vector_literal(blob)
    assert literal.startswith("{") and literal.endswith("}")
    parsed = [float(x) for x in literal[1:-1].split(",")]
    assert struct.pack("<4f", *parsed) == blob


def test_snapshot_sees_one_point_in_time_while_others_write(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    fill_store(path, rows=3)
    messages = DOMAIN_TABLES[0]
    with SqliteSnapshot(str(path)) as snapshot:
        assert snapshot.schema_version() == 2
        before = snapshot.count(messages)
        writer = apsw.Connection(str(path))
        writer.execute("DELETE FROM messages")
        writer.close()
        assert snapshot.count(messages) == before == 3
        assert len(list(snapshot.rows(messages))) == 3
        raw = list(snapshot.raw_rows(messages))
        assert [r[0] for r in raw] == sorted(r[0] for r in raw)  # storage (rowid) order
        assert [r[0] for r in snapshot.raw_rows(messages, raw[0][0])] == [r[0] for r in raw[1:]]
        typed = snapshot.typed_row(messages, raw[0][0])
        assert typed is not None and typed[0] == raw[1][0]
        assert typed[1] == "text" and typed[2] == raw[1][1].encode()  # text as raw bytes
    with SqliteSnapshot(str(path)) as later:
        assert later.count(messages) == 0


def test_snapshot_of_a_file_without_the_schema_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    apsw.Connection(str(path)).execute("CREATE TABLE other (x)")
    with (
        SqliteSnapshot(str(path)) as snapshot,
        pytest.raises(StoreUnavailable, match="liteshift migrate up"),
    ):
        snapshot.count(DOMAIN_TABLES[0])
    with pytest.raises(StoreUnavailable, match="does not exist"):
        SqliteSnapshot(str(tmp_path / "missing.db"))
