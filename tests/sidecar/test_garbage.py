"""No request content produces a 5xx: seeded random garbage at every route, both engines.

Property: for any path, method, query string, headers and body thrown at any route, the
response is < 500, and every 4xx is JSON `{error, detail}` without a traceback.
"""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx

from liteshift.sidecar.routing import Operation
from tests.sidecar.conftest import ADMIN, API, make_sidecar, running

SEED = 20261123
REQUESTS_PER_ROUTE = 20

_STRINGS = [
    "",
    " ",
    "null",
    "0",
    "-1",
    "1e309",
    "NaN",
    "9" * 40,
    "\x00",
    "\ud800",
    "é" * 300,
    "../../etc/passwd",
    "%00",
    "a" * 5000,
    "2026-13-45T99:99:99Z",
    "2026-01-01T00:00:00",
    "2026-01-01T00:00:00+25:00",
    str(uuid.uuid4()),
    "' OR 1=1 --",
    "{}",
    "[]",
    "true",
]


def _json_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(10 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 2**200, 10**30])
    if choice == 3:
        return rng.choice([0.5, -1e308, 1e308, 1e-320])
    if choice in (4, 5):
        return rng.choice(_STRINGS)
    if choice in (6, 7):
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(_STRINGS): _json_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _valid_body(op: Operation) -> dict[str, Any]:
    assert op.body is not None
    body: dict[str, Any] = {}
    for name, field in op.body.model_fields.items():
        if field.is_required():
            body[name] = "x"
    if "vector" in body:
        body["vector"] = [0.1, 0.2, 0.3, 0.4]
    if "payload" in body:
        body["payload"] = {}
    if "status" in body:
        body["status"] = "accepted"
    if "size_bytes" in body:
        body["size_bytes"] = 1
    return body


def _body(rng: random.Random, op: Operation) -> bytes | None:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 200))
    if kind == 1:
        return b"[" * 5000 + b"]" * 5000
    if kind == 2:
        return b'{"a": NaN, "b": Infinity, "a": 1}'
    if kind == 3:
        return json.dumps(_json_value(rng)).encode()
    if op.body is None:
        return json.dumps(_json_value(rng)).encode() if kind < 6 else None
    body = _valid_body(op)
    fields = sorted(op.body.model_fields)
    for name in rng.sample(fields, k=min(len(fields), rng.randrange(1, 3))):
        body[name] = _json_value(rng)
    if kind == 4:
        body[rng.choice(_STRINGS)] = _json_value(rng)
    if kind == 5:
        body.pop(rng.choice(sorted(body)), None) if body else None
    return json.dumps(body).encode()


def _url_safe(text: str) -> str:
    """httpx refuses a lone surrogate or NUL in a URL: send them percent-encoded instead."""
    return {"\ud800": "%ED%A0%80", "\x00": "%00"}.get(text, text)


def _path(rng: random.Random, op: Operation) -> str:
    path = op.path
    for name in op.path_params:
        value = httpx.URL("/" + _url_safe(rng.choice(_STRINGS))).raw_path.decode()[1:]
        path = path.replace("{" + name + "}", value or "x")
    if rng.randrange(6) == 0:
        path += rng.choice(["/", "//x", "/..", "/%2e%2e", "?", "#"])
    return path


def _query(rng: random.Random, op: Operation) -> dict[str, str]:
    names = list(op.query.model_fields) if op.query is not None else []
    names += ["limit", "cursor", "since", "until", "junk"]
    return {rng.choice(names): _url_safe(rng.choice(_STRINGS)) for _ in range(rng.randrange(4))}


def _hammer(client: httpx.Client, operations: list[Operation]) -> int:
    rng = random.Random(SEED)
    sent = 0
    for op in operations:
        headers = ADMIN if op.path.startswith("/admin") else API
        for _ in range(REQUESTS_PER_ROUTE):
            method = (
                op.method
                if rng.randrange(5)
                else rng.choice(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
            )
            extra = rng.choice(
                [
                    {},
                    {"Content-Type": "text/plain"},
                    {"Content-Type": "application/json; charset=latin-1"},
                ]
            )
            response = client.request(
                method,
                _path(rng, op),
                params=_query(rng, op),
                content=_body(rng, op),
                headers={**headers, **extra},
            )
            sent += 1
            assert response.status_code < 500, (method, op.path, response.text)
            if response.status_code >= 400:
                body = response.json()
                assert set(body) == {"error", "detail"}
                assert "Traceback" not in response.text
    return sent


def test_garbage_never_produces_a_5xx(db_url: str, tmp_path: Path, postgres_server: Any) -> None:
    media = postgres_server.create_database()
    try:
        sidecar = make_sidecar(db_url, tmp_path, media_url=media)
        operations: list[Operation] = sidecar.app.state.operations
        assert any(op.path == "/v1/attachments" for op in operations)
        with running(sidecar) as client:
            sent = _hammer(client, operations)
            assert sent == REQUESTS_PER_ROUTE * len(operations)
            assert client.get("/healthz").status_code == 200
    finally:
        postgres_server.drop_database(media)
