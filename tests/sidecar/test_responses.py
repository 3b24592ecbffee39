"""JSON responses (liteshift/sidecar/responses.py): dataclasses as dicts, same bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic_core import to_json
from starlette.responses import Response

from liteshift.sidecar.responses import JsonBytes, json_response, plain
from liteshift.store.models import (
    AgentMessage,
    Embedding,
    EtlCursor,
    Event,
    Message,
    Neighbor,
    Page,
    Proposal,
)

NOW = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
MESSAGE = Message("m1", "c", "user", None, "hi", {"k": [1, 2.5, {"z": None}]}, NOW)
EMBEDDING = Embedding("e1", "message", "m1", "mini", 3, (0.5, -1.0, 2.25), NOW)

CONTENTS: list[Any] = [
    MESSAGE,
    Page((MESSAGE, MESSAGE), "next"),
    Page((), None),
    Proposal("p1", None, "merge", {"a": 1}, "accepted", "ok", NOW, NOW),
    Event("e1", "t", "s", {}, NOW),
    AgentMessage("a1", "c", "bot", None, "x", {}, NOW),
    EtlCursor("n", "42", NOW),
    EMBEDDING,
    Neighbor(EMBEDDING, 0.125),
    [Neighbor(EMBEDDING, 0.0), Neighbor(EMBEDDING, 1.0)],
    Page((EMBEDDING,), None),
    {"ok": True, "items": [1, 2]},
    [],
]


@pytest.mark.parametrize("content", CONTENTS, ids=lambda c: type(c).__name__)
def test_plain_serializes_to_the_same_bytes(content: Any) -> None:
    assert to_json(plain(content)) == to_json(content)
    assert json_response(content).body == to_json(content)


def test_plain_leaves_rows_as_their_field_dicts() -> None:
    assert plain(MESSAGE) is MESSAGE.__dict__
    out = plain(Page((MESSAGE,), None))
    assert out == {"items": [MESSAGE.__dict__], "next_cursor": None}
    assert MESSAGE.__dict__["metadata"] == {"k": [1, 2.5, {"z": None}]}  # not modified


@pytest.mark.parametrize("status", [200, 201, 204, 304, 404, 503])
def test_json_bytes_has_the_headers_starlette_would_compute(status: int) -> None:
    body = b'{"ok":true}'
    expected = Response(body, status_code=status, media_type="application/json")
    got = JsonBytes(body, status)
    assert (got.status_code, got.body, got.raw_headers) == (
        expected.status_code,
        expected.body,
        expected.raw_headers,
    )
