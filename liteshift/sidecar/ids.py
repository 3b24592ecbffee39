"""UUID4 ids for creates that do not bring their own, drawn from a buffered OS CSPRNG.

`uuid.uuid4()` makes one `getrandom` syscall per id, on the event loop thread; a syscall
releases the GIL, and under load getting it back from the store's reader/writer threads can take
a whole switch interval. Reading 4 KiB of `os.urandom` at a time keeps ids exactly as random
(version-4 UUIDs from the same source) with one syscall per 256 ids.
"""

from __future__ import annotations

import os
import threading

_BATCH = 256


class UuidSource:
    """Callable returning canonical lowercase UUID4 text; safe to share between threads."""

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._offset >= len(self._buffer):
                self._buffer = os.urandom(16 * _BATCH)
                self._offset = 0
            raw = bytearray(self._buffer[self._offset : self._offset + 16])
            self._offset += 16
        # What uuid.UUID(bytes=raw, version=4) sets, and its canonical text, at a third of
        # its cost (one is made per create request).
        raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
        h = raw.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_id = UuidSource()
