"""`CorkedTransport`: the writes of one event-loop turn leave in one write, nothing is held
past the turn, `close()` writes first, and a long body is written as it grows."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from liteshift.sidecar.http_protocol import CORK_LIMIT_BYTES, CorkedTransport
from tests.sidecar.conftest import make_sidecar, running


class _Recorder:
    def __init__(self) -> None:
        self.events: list[Any] = []

    def write(self, data: bytes) -> None:
        self.events.append(bytes(data))

    def close(self) -> None:
        self.events.append("closed")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default


def _turn(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


@pytest.fixture
def real() -> _Recorder:
    return _Recorder()


@pytest.fixture
def corked(real: _Recorder, loop: asyncio.AbstractEventLoop) -> CorkedTransport:
    return CorkedTransport(real, loop)  # type: ignore[arg-type]


def test_the_writes_of_one_turn_leave_in_one_write_at_its_end(
    loop: asyncio.AbstractEventLoop, real: _Recorder, corked: CorkedTransport
) -> None:
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b"body")
    assert real.events == []
    _turn(loop)
    assert real.events == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    corked.write(b"next")  # a later turn: its own write, nothing left from before
    _turn(loop)
    assert real.events == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]


def test_close_writes_what_is_held_first(
    loop: asyncio.AbstractEventLoop, real: _Recorder, corked: CorkedTransport
) -> None:
    corked.write(b"last words")
    corked.close()
    _turn(loop)  # the scheduled flush finds nothing left
    assert real.events == [b"last words", "closed"]


def test_a_long_body_is_written_as_it_grows(
    loop: asyncio.AbstractEventLoop, real: _Recorder, corked: CorkedTransport
) -> None:
    chunk = b"x" * (CORK_LIMIT_BYTES // 4)
    for _ in range(9):
        corked.write(chunk)
    assert [len(e) for e in real.events] == [CORK_LIMIT_BYTES, CORK_LIMIT_BYTES]
    _turn(loop)
    assert b"".join(real.events) == chunk * 9


def test_everything_else_is_the_real_transports(corked: CorkedTransport) -> None:
    assert corked.get_extra_info("peername") == ("127.0.0.1", 1234)


def _raw_request(url: str, request: bytes, *, until_closed: bool = False) -> bytes:
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while until_closed or b"\r\n\r\n" not in reply:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
        return reply


def test_a_head_request_gets_its_head_though_no_body_is_written(tmp_path: Path) -> None:
    sidecar = make_sidecar(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    with running(sidecar) as client:
        reply = _raw_request(str(client.base_url), b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200"), reply
        # Keep-alive pipelining: two requests in one packet, two whole responses.
        two = _raw_request(
            str(client.base_url),
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n",
            until_closed=True,
        )
        assert two.count(b"HTTP/1.1 200 OK\r\n") == 2, two
        assert two.count(b'{"status":"ok"}') == 2, two
