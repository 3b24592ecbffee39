"""Futures born finished: the outcome of work that ran on the caller's thread.

A point read the SQLite store runs inline (see `SqliteStore._read_inline`) costs ~20 µs; a
`concurrent.futures.Future` created, settled and read for it costs another ~4 µs, most of it
building a `threading.Condition` nobody will ever wait on. A settled Future shares one
condition instead: it is already FINISHED, so `result()` never waits, `add_done_callback`
calls back at once, and `set_result` refuses (InvalidStateError) as on any finished Future.
It is a real `Future` to every caller (`concurrent.futures.wait`, `asyncio.wrap_future`).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures._base import FINISHED
from typing import Any, TypeVar

R = TypeVar("R")

# Re-entrant, so a caller holding one settled future's condition (`concurrent.futures.wait`
# acquires every future's) can take another's.
_SHARED = threading.Condition(threading.RLock())


class _Settled(Future[Any]):
    def __init__(self, result: Any, exception: BaseException | None) -> None:
        # Future.__init__ is skipped on purpose: it would build the condition this class
        # exists to avoid. These are the attributes Future's methods read.
        self._condition = _SHARED
        self._state = FINISHED
        self._result = result
        self._exception = exception
        self._waiters: list[Any] = []
        self._done_callbacks: list[Any] = []

    # The hot readers, without the condition: the outcome can no longer change.
    def done(self) -> bool:
        return True

    def result(self, timeout: float | None = None) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception


def settled(result: R) -> Future[R]:
    """A finished Future holding `result`."""
    return _Settled(result, None)


def failed(exception: BaseException) -> Future[Any]:
    """A finished Future holding `exception`."""
    return _Settled(None, exception)
