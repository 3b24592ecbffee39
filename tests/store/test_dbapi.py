"""The SQLite adapter's conversions (liteshift/store/dbapi.py): timestamps and JSON text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from liteshift.store.dbapi import format_ts, parse_ts
from liteshift.store.validation import dump_json, json_object

MOMENTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 11, 23, 23, 24, 44, 741169, tzinfo=UTC),
    datetime(2026, 3, 1, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_timestamps_round_trip_in_the_fixed_width_text(moment: datetime) -> None:
    text = format_ts(moment)
    # The historical format, byte for byte: stored text must not change.
    assert text == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").rjust(27, "0")
    assert len(text) == 27
    parsed = parse_ts(text)
    assert parsed == moment
    assert parsed.tzinfo is UTC


def test_text_order_is_time_order() -> None:
    texts = [format_ts(m) for m in MOMENTS]
    assert sorted(texts) == [format_ts(m) for m in sorted(MOMENTS)]


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-01T00:00:00.000000+00:00",
        "2026-01-01 00:00:00.000000Z",
        "2026-01-01T00:00:00Z",
        "2026-13-01T00:00:00.000000Z",
        "",
    ],
)
def test_parse_ts_refuses_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ts(text)


def test_json_text_reads_back_as_json_loads_would() -> None:
    from liteshift.store.dbapi import SqliteDb

    value = json_object(
        "v",
        {
            "int": 2**63 - 1,
            "neg": -(2**63),
            "float": 0.1,
            "tiny": 5e-324,
            "big": 1.7976931348623157e308,
            "exp": 1.5e15,
            "zero": -0.0,
            "text": 'é \u2028 \U0001f600 " \\ /',
            "nested": [{"a": None, "b": [True, False]}, [], {}],
        },
    )
    text = dump_json(value)
    read = SqliteDb.json_out(SqliteDb.__new__(SqliteDb), text)
    assert read == json.loads(text) == value
    assert [type(x) for x in read.values()] == [type(x) for x in json.loads(text).values()]
