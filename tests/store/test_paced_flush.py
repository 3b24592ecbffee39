"""PacedFlush: a file being written is flushed every chunk, and its writer is held back when it
gets more than two chunks ahead of the flushes."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import pytest

from liteshift.store import paced_flush
from liteshift.store.paced_flush import PacedFlush

CHUNK = 64 * 1024


def test_a_file_written_in_steps_is_flushed_every_chunk(tmp_path: Path) -> None:
    path = tmp_path / "copy"
    path.write_bytes(b"")
    step, total = CHUNK // 4, 10 * CHUNK
    with open(path, "ab") as out, PacedFlush(path, chunk=CHUNK) as flush:
        for _ in range(total // step):
            out.write(b"x" * step)
            out.flush()
            flush.advance()
    # At the end at most two chunks are unflushed, and one flush covers at most what the
    # writer could get ahead (two chunks and one step): so at least this many flushes ran.
    least = math.ceil((total - 2 * CHUNK) / (2 * CHUNK + step))
    assert least == 4
    assert least <= flush.flushes <= total // CHUNK


def test_the_writer_waits_while_two_chunks_are_unflushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow_fdatasync(fd: int) -> None:
        started.set()
        release.wait(10)
        os.fsync(fd)

    monkeypatch.setattr(paced_flush, "_fdatasync", slow_fdatasync)
    path = tmp_path / "copy"
    path.write_bytes(b"")
    steps_done: list[int] = []
    with open(path, "ab") as out, PacedFlush(path, chunk=CHUNK) as flush:

        def write() -> None:
            for step in range(6):
                out.write(b"x" * CHUNK)
                out.flush()
                flush.advance()
                steps_done.append(step)

        writer = threading.Thread(target=write)
        writer.start()
        assert started.wait(5)
        writer.join(0.5)
        # The first flush hangs: the writer got two chunks past it and then waited.
        assert writer.is_alive()
        assert len(steps_done) <= 3
        release.set()
        writer.join(5)
        assert not writer.is_alive()
    assert steps_done == list(range(6))


def test_a_failed_flush_is_raised_to_the_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fdatasync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(paced_flush, "_fdatasync", failing_fdatasync)
    path = tmp_path / "copy"
    path.write_bytes(b"")
    with (
        open(path, "ab") as out,
        PacedFlush(path, chunk=CHUNK) as flush,
        pytest.raises(OSError, match="Input/output error"),
    ):
        for _ in range(100):
            out.write(b"x" * CHUNK)
            out.flush()
            flush.advance()
