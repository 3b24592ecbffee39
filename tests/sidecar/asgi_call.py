"""Drive an ASGI app with one bodiless HTTP request, in-process: what it sent, what it raised."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message


@dataclass
class Outcome:
    scope: dict[str, Any]
    sent: list[Message]
    #: (exception type name, its text) when the app raised, else None.
    raised: tuple[str, str] | None


async def call(app: ASGIApp, method: str, path: str, root_path: str = "") -> Outcome:
    scope: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    raised = None
    try:
        await app(scope, receive, send)
    except Exception as exc:
        raised = (type(exc).__name__, str(exc))
    return Outcome(scope, sent, raised)
