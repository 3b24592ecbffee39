"""uvicorn's httptools protocol with each response sent in one write.

uvicorn writes a response in two `transport.write` calls, the head (status line and headers) and
then the body. On a TCP socket each is a `send()` of its own, and on loopback each runs the
kernel's whole transmit and receive path and wakes the client once more: profiled under 16
clients, the two writes were ~23% of the serving thread's time for a point read. The
transport here holds what is written during one turn of the event loop and writes it at the
end of that turn, so a head and its body (sent one after the other by the same task, without
yielding to the loop) leave in one `send()`.

Nothing waits for a later turn: the held bytes are written by a callback scheduled at the first
write of the turn, before the loop polls for I/O again; `close()` writes them first; and once
`CORK_LIMIT_BYTES` are held they are written at once, so a long streamed body still reaches the
real transport (and its flow control) as it is produced.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

#: Held bytes written at once, without waiting for the end of the loop's turn.
CORK_LIMIT_BYTES = 64 * 1024


class CorkedTransport:
    """A transport proxy that coalesces the writes of one event-loop turn (see module doc)."""

    __slots__ = ("_held", "_held_bytes", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._loop.call_soon(self.flush)
        else:
            held.append(data)
            self._held_bytes += len(data)
        if self._held_bytes >= CORK_LIMIT_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is held now (a no-op when nothing is)."""
        held = self._held
        if held is None:
            return
        self._held = None
        self._held_bytes = 0
        self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        # Everything else (is_closing, get_extra_info, pause_reading, set_protocol, …) is the
        # real transport's.
        return getattr(self._transport, name)


class CorkedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a `CorkedTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CorkedTransport(transport, self.loop))  # type: ignore[arg-type]
