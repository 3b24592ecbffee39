"""Flush a large file to stable storage while it is being written, so a live database's fsyncs
on the same disk never queue behind more than a few megabytes of it.

Why: a device cache flush (what every `synchronous=FULL` commit's fsync ends with) has to make
durable everything written to the device before it, whichever file it came from. A 1 GB backup
copy written with no flush (or with `sync_file_range`, which starts writeback but issues no
flush) leaves hundreds of megabytes for the next WAL fsync to wait on: measured here, 4 store
writers saw 260-340 ms stalls during a copy with `sync_file_range` writeback and 1.2 s with
none. Flushing the copy every `FLUSH_CHUNK` bytes on a helper thread, while the copy goes on,
keeps what a WAL fsync can find unflushed to about two chunks (writer max 45-85 ms) and costs
the copy no time: flushing overlaps the copying instead of following it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

#: Bytes written between two flushes of the file; the writer of the file waits when it is two
#: chunks ahead of the last finished flush.
FLUSH_CHUNK = 8 * 1024 * 1024

_fdatasync = getattr(os, "fdatasync", os.fsync)


class PacedFlush:
    """`with PacedFlush(path) as flush:` then `flush.advance()` after each write to `path`.

    The file must exist. A background thread fdatasyncs it whenever `chunk` more bytes were
    written; `advance()` blocks while the writer is more than two chunks ahead of the flushes,
    and re-raises a failed flush (an OSError). Leaving the block stops the thread; it does not
    flush what is left: the caller's final fsync does, and finds at most two chunks to do.
    """

    def __init__(self, path: Path, chunk: int = FLUSH_CHUNK) -> None:
        self.path = path
        self.chunk = chunk
        self.flushes = 0
        self._fd = -1
        self._written = 0
        self._flushed = 0
        self._done = False
        self._error: OSError | None = None
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="paced-flush", daemon=True)

    def __enter__(self) -> PacedFlush:
        self._fd = os.open(self.path, os.O_RDONLY)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._done = True
            self._changed.notify_all()
        self._thread.join()
        os.close(self._fd)

    def advance(self) -> None:
        """Note the file's current size; wait while more than two chunks are unflushed."""
        size = os.fstat(self._fd).st_size
        with self._changed:
            self._written = size
            self._changed.notify_all()
            while self._error is None and self._written - self._flushed > 2 * self.chunk:
                self._changed.wait()
            if self._error is not None:
                raise self._error

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._done and self._written - self._flushed < self.chunk:
                    self._changed.wait()
                if self._done:
                    return
                target = self._written
            try:
                _fdatasync(self._fd)
            except OSError as exc:
                with self._changed:
                    self._error = exc
                    self._changed.notify_all()
                return
            with self._changed:
                self._flushed = target
                self.flushes += 1
                self._changed.notify_all()


#: Bytes `write_back_in_steps` writes out at a time.
WRITEBACK_STEP = 16 * 1024 * 1024


def write_back_in_steps(path: str | Path, stop: Callable[[], bool] = lambda: False) -> None:
    """Write a file's dirty pages out `WRITEBACK_STEP` bytes at a time, waiting for each step
    (Linux `sync_file_range`; a no-op elsewhere), until done or `stop()`.

    For a file about to be fsynced that may have been written wholesale (the store's main file
    after a restore or a copy): the fsync would flush all of it in one burst, and a live
    database's fsyncs would queue behind that burst. In steps they queue behind one step. On a
    clean file this is a cheap walk of the page cache's dirty tags.
    """
    if _sync_file_range is None:
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for offset in range(0, size, WRITEBACK_STEP):
            if stop():
                return
            _sync_file_range(fd, offset, WRITEBACK_STEP, _WAIT_BEFORE | _WRITE | _WAIT_AFTER)
    finally:
        os.close(fd)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_WAIT_BEFORE = 1
_WRITE = 2
_WAIT_AFTER = 4
_sync_file_range = _load_sync_file_range()
