"""The progress callback every long backup operation accepts (CLI bars, sidecar logs)."""

from __future__ import annotations

from collections.abc import Callable

#: `progress(phase, done, total)`: `phase` is one of the names below, `done`/`total` count
#: bytes (rows for a Postgres restore's "check"); `total` is None when unknown. Called from
#: worker threads too.
Progress = Callable[[str, int, int | None], None]

COPY = "copy"
CHECK = "check"
HASH = "hash"
COMPRESS = "compress"
DUMP = "dump"
RESTORE = "restore"


def silent(phase: str, done: int, total: int | None) -> None:
    """The default callback: report nothing."""
