"""Both engines accept exactly the same data (liteshift/store/validation.py).

Each rule is checked on both engines: the refused value raises ValidationError naming the field
and nothing is written; the accepted edge values come back equal from both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from liteshift.store import Store, ValidationError
from liteshift.store.models import EmbeddingIn, EventIn, MessageIn
from liteshift.store.validation import parse_json_object
from tests.store.conftest import DIM

VEC = tuple([0.5] * DIM)

REFUSED: list[tuple[str, Callable[[], Any], str]] = [
    ("nul in text", lambda: MessageIn("c", "user", "a\x00b"), "content"),
    ("lone surrogate", lambda: MessageIn("c", "user", "bad \udc80"), "content"),
    ("nul in json string", lambda: MessageIn("c", "user", "x", metadata={"k": "\x00"}), "metadata"),
    ("nul in json key", lambda: MessageIn("c", "user", "x", metadata={"\x00": 1}), "metadata"),
    (
        "surrogate in json",
        lambda: MessageIn("c", "user", "x", metadata={"k": "\ud800"}),
        "metadata",
    ),
    ("NaN in json", lambda: MessageIn("c", "user", "x", metadata={"k": math.nan}), "metadata"),
    ("inf in json", lambda: MessageIn("c", "user", "x", metadata={"k": [math.inf]}), "metadata"),
    ("int over 64 bits", lambda: MessageIn("c", "user", "x", metadata={"k": 2**63}), "metadata"),
    (
        "int under 64 bits",
        lambda: MessageIn("c", "user", "x", metadata={"k": -(2**63) - 1}),
        "metadata",
    ),
    ("non-str key", lambda: MessageIn("c", "user", "x", metadata={1: "a"}), "metadata"),  # type: ignore[dict-item]
    ("not json", lambda: MessageIn("c", "user", "x", metadata={"k": object()}), "metadata"),  # type: ignore[dict-item]
    ("json not object", lambda: MessageIn("c", "user", "x", metadata=[1]), "metadata"),  # type: ignore[arg-type]
    (
        "naive timestamp",
        lambda: MessageIn("c", "user", "x", created_at=datetime(2026, 1, 1)),
        "created_at",
    ),
    (
        "timestamp past 9999 in UTC",
        lambda: MessageIn(
            "c",
            "user",
            "x",
            created_at=datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        ),
        "created_at",
    ),
    (
        "uppercase uuid",
        lambda: MessageIn("c", "user", "x", id="6F9619FF-8B86-D011-B42D-00C04FC964FF"),
        "id",
    ),
    (
        "uuid without dashes",
        lambda: MessageIn("c", "user", "x", id="6f9619ff8b86d011b42d00c04fc964ff"),
        "id",
    ),
    ("empty role", lambda: MessageIn("c", " ", "x"), "role"),
    ("empty conversation", lambda: MessageIn("", "user", "x"), "conversation_id"),
    ("content not text", lambda: MessageIn("c", "user", b"bytes"), "content"),  # type: ignore[arg-type]
    ("vector NaN", lambda: EmbeddingIn("m", "1", "x", (math.nan,) * DIM), "vector"),
    ("vector wrong size", lambda: EmbeddingIn("m", "1", "x", (1.0,) * (DIM + 1)), "vector"),
    ("vector beyond float32", lambda: EmbeddingIn("m", "1", "x", (1e39,) * DIM), "vector"),
    ("vector of text", lambda: EmbeddingIn("m", "1", "x", "abc"), "vector"),  # type: ignore[arg-type]
    ("vector bool", lambda: EmbeddingIn("m", "1", "x", (True,) * DIM), "vector"),
    ("event deep json", lambda: EventIn("t", _deep(70)), "payload"),
]


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"k": value}
    return value


def _create(store: Store, item: object) -> object:
    if isinstance(item, MessageIn):
        return store.create_message(item)
    if isinstance(item, EmbeddingIn):
        return store.create_embedding(item)
    assert isinstance(item, EventIn)
    return store.append_event(item)


@pytest.mark.parametrize(("label", "make", "field"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_on_both_engines(
    shared_store: Store, label: str, make: Callable[[], object], field: str
) -> None:
    store = shared_store
    with pytest.raises(ValidationError) as exc:
        _create(store, make())
    assert exc.value.field == field
    assert str(exc.value).startswith(f"invalid {field}: ")
    assert store.list_messages().items == ()
    assert store.list_embeddings().items == ()
    assert store.list_events().items == ()


def test_edge_values_round_trip_equal(store: Store) -> None:
    metadata = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "neg_zero": -0.0,
        "tiny": 5e-324,
        "big": 1.7976931348623157e308,
        "unicode": "ß 漢字 👋 \u2028",
        "nested": {"list": [1, "two", None, True, {"x": []}]},
        "b": 1,
        "a": 2,
    }
    made = store.create_message(
        MessageIn(
            "c",
            "user",
            "tab\tnewline\n",
            metadata=metadata,
            created_at=datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        )
    )
    got = store.get_message(made.id)
    assert got == made
    # What both engines return: -0.0 as 0.0, and a huge integral float as jsonb's integer.
    assert got.metadata == {**metadata, "big": int("17976931348623157" + "0" * 292)}
    assert got.metadata["big"] == made.metadata["big"]
    assert math.copysign(1.0, got.metadata["neg_zero"]) == 1.0  # type: ignore[arg-type]
    late = store.create_message(
        MessageIn(
            "c",
            "user",
            "",
            created_at=datetime(
                9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=2))
            ),
        )
    )
    assert store.get_message(late.id).created_at == datetime(
        9999, 12, 31, 21, 59, 59, 999999, tzinfo=UTC
    )
    # Text order of SQLite's timestamps is time order, across the whole year range.
    assert [m.id for m in store.list_messages().items] == [made.id, late.id]


def test_vectors_round_trip_as_float32(store: Store) -> None:
    vector = tuple([0.1, -0.0, 1e-30, 3.4e38, -1.5, 2.0, 1 / 3, 7.0][:DIM])
    made = store.create_embedding(EmbeddingIn("m", "1", "x", vector))
    again = store.get_embedding(made.id)
    assert again.vector == made.vector
    assert again.vector != vector  # 0.1 and 1/3 are not float32 values
    assert again.vector == pytest.approx(vector, rel=1e-7)


def test_json_text_parsing_refuses_what_jsonb_would_change() -> None:
    with pytest.raises(ValidationError, match="duplicate object key 'a'"):
        parse_json_object("payload", '{"a": 1, "b": {"a": 2}, "a": 3}')
    with pytest.raises(ValidationError, match="duplicate"):
        parse_json_object("payload", '{"x": {"a": 1, "a": 1}}')
    for bad in ('{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'):
        with pytest.raises(ValidationError, match="not valid JSON"):
            parse_json_object("payload", bad)
    with pytest.raises(ValidationError, match="NUL"):
        parse_json_object("payload", '{"a": "\\u0000"}')
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_json_object("payload", "{oops")
    with pytest.raises(ValidationError, match="JSON object"):
        parse_json_object("payload", "[1, 2]")
    assert parse_json_object("payload", b'{"a": [1, 2.5, "\\u00e9"]}') == {"a": [1, 2.5, "é"]}


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"b": 1, "a": {"d": [3, {"z": None, "y": True}], "c": "é \u2028 \U0001f600"}},
        {"f": 0.1, "big": 10000000000000000, "neg": -2.5e-300, "s": 'quote " and \\ slash /'},
    ],
)
def test_dump_json_is_the_canonical_text(value: dict[str, Any]) -> None:
    import json

    from liteshift.store.validation import dump_json

    text = dump_json(value)
    assert text == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert json.loads(text) == value
