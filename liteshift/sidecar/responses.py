"""JSON responses serialized by pydantic-core (Rust): dataclasses, datetimes and tuples included."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from starlette.responses import Response


def json_response(content: Any, status_code: int = 200) -> Response:
    """`content` as `application/json` (the store's dataclasses serialize field by field)."""
    return Response(to_json(content), status_code=status_code, media_type="application/json")


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
