"""JSON responses serialized by pydantic-core (Rust): dataclasses, datetimes and tuples included."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

#: Per dataclass type: the fields that may hold further dataclasses (None: not a dataclass).
_NESTED: dict[type, tuple[str, ...] | None] = {}


def _nested_fields(cls: type) -> tuple[str, ...] | None:
    try:
        return _NESTED[cls]
    except KeyError:
        pass
    nested: tuple[str, ...] | None = None
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        nested = tuple(
            f.name for f in dataclasses.fields(cls) if not _is_leaf(hints.get(f.name, Any))
        )
    _NESTED[cls] = nested
    return nested


def _is_leaf(hint: Any) -> bool:
    """True when a field of this type never holds a dataclass (str, datetime, JSON, vectors)."""
    if isinstance(hint, typing.TypeVar) or hint is Any:
        return False
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return False
    return all(_is_leaf(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)


def plain(content: Any) -> Any:
    """`content` with every dataclass replaced by a dict of its fields (same JSON).

    pydantic-core serializes a plain dict several times faster than it serializes a dataclass
    (a 50-row page: ~100 µs instead of ~280 µs), and the bytes are identical: the fields in
    declaration order, each value serialized the same way. Flat rows cost nothing: their
    `__dict__` is handed over as is.
    """
    if isinstance(content, list | tuple):
        return [plain(item) for item in content]
    nested = _nested_fields(type(content))
    if nested is None:
        return content
    fields: dict[str, Any] | None = getattr(content, "__dict__", None)
    if fields is None:  # a slotted dataclass: pydantic-core's own (slower) path
        return content
    if not nested:
        return fields
    out = dict(fields)
    for name in nested:
        out[name] = plain(out[name])
    return out


class JsonBytes(Response):
    """A response of already serialized JSON: the same two headers `Response` would compute
    (`content-length`, `content-type`), set directly."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = [(b"content-type", b"application/json")]
        if status_code >= 200 and status_code not in (204, 304):
            self.raw_headers.insert(0, (b"content-length", str(len(body)).encode()))


def json_response(content: Any, status_code: int = 200) -> Response:
    """`content` as `application/json` (the store's dataclasses serialize field by field)."""
    return JsonBytes(to_json(plain(content)), status_code)


def error_response(
    status_code: int, code: str, detail: Any, headers: dict[str, str] | None = None
) -> Response:
    """The one error shape of the API: `{"error": code, "detail": ...}`."""
    return Response(
        to_json({"error": code, "detail": detail}),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )
