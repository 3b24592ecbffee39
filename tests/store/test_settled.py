"""Settled futures behave like finished `concurrent.futures.Future`s for every caller."""

from __future__ import annotations

import asyncio
import concurrent.futures
from concurrent.futures import Future, InvalidStateError

import pytest

from liteshift.store.settled import failed, settled


def test_a_settled_future_holds_its_result() -> None:
    future = settled(42)
    assert isinstance(future, Future)
    assert future.done()
    assert not future.running()
    assert not future.cancelled()
    assert not future.cancel()
    assert future.result() == 42
    assert future.result(timeout=0) == 42
    assert future.exception() is None


def test_a_failed_future_raises_its_exception() -> None:
    error = ValueError("bad id")
    future = failed(error)
    assert future.done()
    assert future.exception() is error
    with pytest.raises(ValueError, match="bad id"):
        future.result()


def test_callbacks_run_at_once_and_a_second_outcome_is_refused() -> None:
    future = settled("x")
    seen: list[object] = []
    future.add_done_callback(lambda f: seen.append(f.result()))
    assert seen == ["x"]
    with pytest.raises(InvalidStateError):
        future.set_result("y")
    with pytest.raises(InvalidStateError):
        failed(KeyError("k")).set_exception(KeyError("again"))


def test_wait_and_as_completed_accept_settled_futures_beside_real_ones() -> None:
    pending: Future[int] = Future()
    ready = [settled(1), failed(RuntimeError("no")), settled(3)]
    done, not_done = concurrent.futures.wait([*ready, pending], timeout=0)
    assert done == set(ready)
    assert not_done == {pending}
    assert set(concurrent.futures.as_completed(ready, timeout=1)) == set(ready)


def test_asyncio_can_await_a_settled_future() -> None:
    async def main() -> int:
        return await asyncio.wrap_future(settled(7))

    assert asyncio.run(main()) == 7
