"""SwitchableStore over real engines: a real SQLite file swapped for a real Postgres database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import psycopg
import pytest

from liteshift.sidecar.switchable import SwitchableStore, operation_kind
from liteshift.store import Conflict, NotFound, Store, StoreUnavailable, ValidationError, open_store
from liteshift.store.models import AttachmentIn, EventIn, Message, MessageIn

DIM = 4


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'primary.db'}", migrate=True, vector_dimension=DIM)
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def postgres_store(postgres_dsn: str) -> Iterator[Store]:
    store = open_store(postgres_dsn, migrate=True, vector_dimension=DIM)
    try:
        yield store
    finally:
        store.close()


def message(i: int) -> MessageIn:
    return MessageIn(conversation_id="c", role="user", content=f"m{i}")


def test_every_store_member_is_forwarded_explicitly() -> None:
    # mypy checks the signatures; this catches a Protocol method added later and reached only
    # through some fallback.
    members = {n for n in vars(Store) if not n.startswith("_")} | set(Store.__annotations__)
    forwarded = set(vars(SwitchableStore))
    missing = sorted(n for n in members if n not in forwarded and n not in Store.__annotations__)
    assert not missing, f"SwitchableStore does not forward {missing}"
    proxy_attrs = {"engine", "media_enabled", "vector_dimension"}
    assert set(Store.__annotations__) <= proxy_attrs


def test_write_kinds_come_from_the_store_declarations(sqlite_store: Store) -> None:
    assert operation_kind(sqlite_store, "create_message") == "write"
    assert operation_kind(sqlite_store, "advance_cursor") == "write"
    assert operation_kind(sqlite_store, "get_message") == "read"
    assert operation_kind(sqlite_store, "create_attachment") == "media_write"
    assert operation_kind(sqlite_store, "close") is None


def test_forwards_reads_and_writes(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    created = proxy.create_message(message(1))
    assert proxy.get_message(created.id) == created
    assert sqlite_store.get_message(created.id) == created
    assert [m.id for m in proxy.list_messages(conversation_id="c").items] == [created.id]
    assert proxy.engine == "sqlite"
    assert proxy.stats().engine == "sqlite"
    proxy.ping()
    with pytest.raises(NotFound):
        proxy.get_event("00000000-0000-4000-8000-000000000000")


def test_writes_held_at_the_gate_land_on_the_new_engine(
    sqlite_store: Store, postgres_store: Store
) -> None:
    proxy = SwitchableStore(sqlite_store)
    before = proxy.create_message(message(0))
    proxy.pause_writes()
    held: list[Future[Any]] = [proxy.submit(proxy.create_message, message(i)) for i in range(1, 21)]
    held.append(proxy.submit(proxy.append_event, EventIn(type="t", payload={"n": 1})))
    time.sleep(0.2)
    assert not any(f.done() for f in held)
    assert proxy.writes_held == len(held)
    # Reads are not gated while writes wait.
    assert proxy.get_message(before.id) == before
    assert proxy.wait_drained(5)
    old = proxy.swap(postgres_store)
    assert old is sqlite_store
    assert proxy.engine == "postgres"
    proxy.resume_writes()
    results = [f.result(timeout=10) for f in held]
    old.close()
    messages = [r for r in results if isinstance(r, Message)]
    assert len(messages) == 20
    for m in messages:
        assert postgres_store.get_message(m.id) == m
    reopened = open_store(f"sqlite:///{sqlite_store.path}", vector_dimension=DIM)  # type: ignore[attr-defined]
    try:
        with pytest.raises(NotFound):
            reopened.get_message(messages[0].id)
        assert reopened.get_message(before.id) == before
    finally:
        reopened.close()
    # New writes go to Postgres directly.
    after = proxy.create_message(message(99))
    assert postgres_store.get_message(after.id) == after


def test_a_blocking_caller_waits_for_the_gate(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    proxy.pause_writes()
    done: list[Message] = []
    caller = threading.Thread(target=lambda: done.append(proxy.create_message(message(1))))
    caller.start()
    time.sleep(0.2)
    assert caller.is_alive() and not done
    proxy.resume_writes()
    caller.join(timeout=10)
    assert sqlite_store.get_message(done[0].id) == done[0]


def test_wait_drained_covers_writes_already_handed_over(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    stop = threading.Event()
    submitted: list[Future[Message]] = []

    def load() -> None:
        mine: list[Future[Message]] = []
        while not stop.is_set() and len(mine) < 3000:
            mine.append(proxy.submit(proxy.create_message, message(len(mine))))
            submitted.append(mine[-1])
            if len(mine) > 32 and not proxy.writes_paused:
                mine[-32].result(timeout=10)  # keep up to 32 writes of this thread in flight

    writers = [threading.Thread(target=load) for _ in range(4)]
    for w in writers:
        w.start()
    time.sleep(0.3)
    proxy.pause_writes()
    assert proxy.wait_drained(10)
    handed_over = [f for f in list(submitted) if f.done()]
    # Every write not held at the gate has committed once the drain returns.
    assert len(handed_over) + proxy.writes_held == len(submitted)
    assert proxy.writes_in_flight == 0
    stop.set()
    for w in writers:
        w.join()
    proxy.resume_writes()
    for f in submitted:
        f.result(timeout=10)
    assert len(submitted) > 50


def test_failures_stay_per_write_and_are_counted(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    first = proxy.create_message(message(1))
    bad = proxy.submit(proxy.create_message, MessageIn(conversation_id="", role="r", content="x"))
    with pytest.raises(ValidationError):
        bad.result(timeout=5)
    proxy.pause_writes()
    duplicate = proxy.submit(
        proxy.create_message, MessageIn(conversation_id="c", role="r", content="x", id=first.id)
    )
    fine = proxy.submit(proxy.create_message, message(2))
    proxy.resume_writes()
    with pytest.raises(Conflict):
        duplicate.result(timeout=5)
    assert fine.result(timeout=5).content == "m2"
    assert proxy.wait_drained(5)
    assert proxy.writes_in_flight == 0


def test_a_cancelled_held_write_is_never_run(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    proxy.pause_writes()
    cancelled = proxy.submit(proxy.create_message, message(1))
    kept = proxy.submit(proxy.create_message, message(2))
    assert cancelled.cancel()
    proxy.resume_writes()
    assert kept.result(timeout=5).content == "m2"
    assert [m.content for m in proxy.list_messages().items] == ["m2"]


def test_swap_needs_a_closed_gate(sqlite_store: Store, postgres_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    with pytest.raises(RuntimeError, match="gate"):
        proxy.swap(postgres_store)
    assert proxy.current is sqlite_store


def test_close_fails_held_writes_and_refuses_new_ones(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}", migrate=True, vector_dimension=DIM)
    proxy = SwitchableStore(store)
    proxy.pause_writes()
    held = proxy.submit(proxy.create_message, message(1))
    proxy.close()
    with pytest.raises(StoreUnavailable):
        held.result(timeout=5)
    with pytest.raises(StoreUnavailable):
        proxy.create_message(message(2))


def test_submit_refuses_what_is_not_a_domain_method(sqlite_store: Store) -> None:
    proxy = SwitchableStore(sqlite_store)
    with pytest.raises(TypeError):
        proxy.submit(proxy.close).result(timeout=5)


def test_a_retired_engine_closes_after_its_media_operations(
    tmp_path: Path, postgres_server: Any, postgres_dsn: str
) -> None:
    media = postgres_server.create_database()
    try:
        sqlite = open_store(
            f"sqlite:///{tmp_path / 'm.db'}", media_url=media, migrate=True, vector_dimension=DIM
        )
        postgres = open_store(postgres_dsn, media_url=media, migrate=True, vector_dimension=DIM)
        proxy = SwitchableStore(sqlite)
        parent = proxy.create_message(message(1))
        with psycopg.connect(media) as blocker:
            # Holds the attachment insert of the media task below until the lock goes.
            blocker.execute("LOCK TABLE attachments IN ACCESS EXCLUSIVE MODE")
            pending = proxy.submit(
                proxy.create_attachment,
                AttachmentIn(message_id=parent.id, media_type="image", uri="s3://x", size_bytes=1),
            )
            proxy.pause_writes()
            assert proxy.wait_drained(5)
            old = proxy.swap(postgres)
            proxy.resume_writes()
            retiring = threading.Thread(target=proxy.close_retired, args=(old,))
            retiring.start()
            time.sleep(0.3)
            assert retiring.is_alive() and not pending.done()
            old.ping()  # not closed while its media operation runs
        retiring.join(timeout=10)
        assert not retiring.is_alive()
        assert pending.result(timeout=5).message_id == parent.id
        with pytest.raises(StoreUnavailable):
            old.ping()
        # The proxy now serves attachments through the new engine.
        assert proxy.get_attachment(pending.result().id) == pending.result()
        proxy.close()
    finally:
        postgres_server.drop_database(media)
