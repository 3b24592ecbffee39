"""The SQLite engine: group commit, concurrency without BUSY escaping, durability, connections."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import apsw
import pytest
from pydantic_core import to_json

from liteshift.store import MigrationError, NotFound, OpSample, StoreUnavailable, open_store
from liteshift.store.models import MessageIn
from liteshift.store.sqlite import SqliteStore
from tests.store.conftest import DIM


def _open(path: Path, **options: object) -> SqliteStore:
    store = open_store(f"sqlite://{path}", migrate=True, vector_dimension=DIM, **options)  # type: ignore[arg-type]
    assert isinstance(store, SqliteStore)
    return store


def test_sixteen_threads_for_five_seconds(tmp_path: Path) -> None:
    """Every acknowledged write is there afterwards; no BUSY reaches a caller, even while
    another connection keeps grabbing the write lock and the busy timeout is only 1 ms."""
    db = tmp_path / "load.db"
    samples: list[OpSample] = []
    store = _open(db, busy_timeout_ms=1, observer=samples.append)
    stop = threading.Event()
    acked: list[list[str]] = [[] for _ in range(16)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            while not stop.is_set():
                made = store.create_message(MessageIn(f"conv-{n}", "user", f"{n}"))
                acked[n].append(made.id)
        except BaseException as exc:
            errors.append(exc)

    def locker() -> None:
        # Another process's writer (a backup, the CLI): holds the lock for 20 ms at a time.
        conn = apsw.Connection(str(db))
        conn.set_busy_timeout(5000)
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            time.sleep(0.02)
            conn.execute("COMMIT")
            time.sleep(0.05)
        conn.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    threads.append(threading.Thread(target=locker))
    for t in threads:
        t.start()
    time.sleep(5)
    stop.set()
    for t in threads:
        t.join()
    store.close()

    assert errors == []
    total = sum(len(ids) for ids in acked)
    assert total > 100, total
    assert sum(s.busy_errors for s in samples) > 0  # BUSY happened, and was absorbed
    assert store.batches_committed < total  # group commit: several writes per transaction

    reopened = _open(db)
    try:
        for n, ids in enumerate(acked):
            stored: list[str] = []
            cursor = None
            while True:
                page = reopened.list_messages(
                    conversation_id=f"conv-{n}", limit=1000, cursor=cursor
                )
                stored.extend(m.id for m in page.items)
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert stored == ids
    finally:
        reopened.close()


_KILL_SCRIPT = """
import sys
from liteshift.store import open_store
from liteshift.store.models import MessageIn
store = open_store(sys.argv[1], migrate=True, vector_dimension=8)
while True:
    made = store.create_message(MessageIn("c", "user", "x"))
    print(made.id, flush=True)
"""


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, f"sqlite://{db}"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as proc:
        assert proc.stdout is not None
        acked = [proc.stdout.readline().strip() for _ in range(300)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # Lines printed before the kill are acknowledged too; a torn last line is not.
        acked += [line.strip() for line in proc.stdout if line.endswith("\n")]
    store = _open(db)
    try:
        stored = {m.id for m in store.list_messages(limit=1000).items}
        cursor = store.list_messages(limit=1000).next_cursor
        while cursor:
            page = store.list_messages(limit=1000, cursor=cursor)
            stored |= {m.id for m in page.items}
            cursor = page.next_cursor
    finally:
        store.close()
    assert all(acked)
    assert set(acked) <= stored


def test_group_commit_batches_concurrent_writes(tmp_path: Path) -> None:
    store = _open(tmp_path / "g.db", batch_max_wait_seconds=0.05)
    try:
        inputs = [MessageIn("c", "u", str(i)) for i in range(300)]
        futures = [store.submit(store.create_message, m) for m in inputs]
        assert all(f.result(timeout=30) for f in futures)
        # 300 writes in at most 60 transactions: at least 5 writes per fsync on average, with
        # room for a slow, shared test machine (typically it is 2 or 3 transactions).
        assert store.batches_committed <= 60
    finally:
        store.close()


def test_synchronous_option(tmp_path: Path) -> None:
    for mode, value in (("FULL", 2), ("NORMAL", 1)):
        store = _open(tmp_path / f"{mode}.db", synchronous=mode)
        try:
            assert store._writer_conn.pragma("synchronous") == value
            assert store._writer_conn.pragma("journal_mode") == "wal"
        finally:
            store.close()
    with pytest.raises(Exception, match="synchronous"):
        _open(tmp_path / "x.db", synchronous="OFF")


def test_store_settings_do_not_depend_on_global_apsw_hooks(tmp_path: Path) -> None:
    """Whatever other code does to `apsw.connection_hooks`, the store's connections get WAL."""
    saved = list(apsw.connection_hooks)
    apsw.connection_hooks.clear()
    try:
        store = _open(tmp_path / "h.db")
        try:
            assert store._writer_conn.pragma("journal_mode") == "wal"
            assert store._writer_conn.pragma("foreign_keys") == 1
            mode = store._readers.submit(lambda: store._reader().pragma("journal_mode"))
            assert mode.result(timeout=10) == "wal"
        finally:
            store.close()
        # ...and the store installs no process-wide hook of its own on other connections.
        assert apsw.connection_hooks == []
    finally:
        apsw.connection_hooks[:] = saved


def test_readers_are_query_only(tmp_path: Path) -> None:
    store = _open(tmp_path / "r.db")
    try:
        attempt = store._readers.submit(
            lambda: store._reader().execute("DELETE FROM messages").fetchall()
        )
        with pytest.raises(apsw.ReadOnlyError):
            attempt.result(timeout=10)
    finally:
        store.close()


def test_open_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="does not exist"):
        open_store(f"sqlite://{tmp_path}/missing/dir/x.db")
    with pytest.raises(MigrationError, match="no liteshift schema"):
        open_store(f"sqlite://{tmp_path}/empty.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match=r"junk\.db"):
        open_store(f"sqlite://{junk}")


@pytest.mark.parametrize("index", ["vec", "vss"])
def test_disk_full_fails_the_batch_and_the_writer_lives_on(tmp_path: Path, index: str) -> None:
    """SQLITE_FULL mid-batch: its callers get an error, nothing of it is kept, later writes work."""
    store = _open(tmp_path / "full.db", vector_index=index, batch_max_wait_seconds=0.05)
    try:
        from liteshift.store.models import EmbeddingIn

        kept = store.create_embedding(EmbeddingIn("m", "kept", "x", tuple([0.5] * DIM)))
        pages = store._writer_conn.pragma("page_count")
        store._writer_conn.pragma("max_page_count", pages + 2)  # the "disk" is nearly full
        futures: list[Future[Any]] = [
            store.submit(store.create_embedding, EmbeddingIn("m", f"e{i}", "x", tuple([0.1] * DIM)))
            for i in range(3)
        ]
        futures.append(store.submit(store.create_message, MessageIn("c", "user", "x" * 200_000)))
        errors = [f.exception(timeout=30) for f in futures]
        # SQLite abandons the whole transaction on SQLITE_FULL: every write of that batch fails.
        assert isinstance(errors[3], StoreUnavailable), errors
        assert "full" in str(errors[3]).lower()
        store._writer_conn.pragma("max_page_count", 1_000_000)

        after = store.create_embedding(EmbeddingIn("m", "after", "x", tuple([0.2] * DIM)))
        owners = {e.owner_id for e in store.list_embeddings(limit=100).items}
        failed = {f"e{i}" for i, e in enumerate(errors[:3]) if e is not None}
        assert {"kept", "after"} <= owners
        assert not owners & failed
        found = {n.embedding.id for n in store.search_embeddings(tuple([0.2] * DIM), 100)}
        assert found == {e.id for e in store.list_embeddings(limit=100).items}
        assert {kept.id, after.id} <= found
    finally:
        store.close()


# --- inline reads ----------------------------------------------------------------------------


def _open_engine(path: Path, **options: object) -> SqliteStore:
    """The engine with options `open_store` does not expose (the schema migrated first)."""
    _open(path).close()
    return SqliteStore(str(path), vector_dimension=DIM, **options)  # type: ignore[arg-type]


def test_reads_run_inline_on_the_callers_thread(tmp_path: Path) -> None:
    samples: list[OpSample] = []
    store = _open(tmp_path / "inline.db", observer=samples.append)
    try:
        made = store.create_message(MessageIn("c", "user", "hello", metadata={"k": [1, 2.5]}))
        future = store.submit(store.get_message, made.id)
        # Resolved before submit returned: no pool thread involved.
        assert future.done()
        assert future.result() == made
        assert store.submit(store.list_messages, conversation_id="c").result().items == (made,)
        # Errors are resolved inline too, and reads are still observed.
        missing = store.submit(store.get_message, "00000000-0000-4000-8000-000000000000")
        assert missing.done() and type(missing.exception()).__name__ == "NotFound"
        reads = [s for s in samples if s.kind == "read"]
        assert [s.op for s in reads] == ["get_message", "list_messages", "get_message"]
        assert [s.ok for s in reads] == [True, True, False]
    finally:
        store.close()
    assert store._inline_free == []  # closed with the store


def test_inline_connections_are_query_only(tmp_path: Path) -> None:
    store = _open(tmp_path / "ro.db")
    try:
        reader = store._open_inline()
        assert reader is not None
        with pytest.raises(apsw.ReadOnlyError):
            reader.conn.execute("DELETE FROM messages")
        store._give_back(reader)
    finally:
        store.close()


def test_a_multi_statement_read_runs_inline_in_one_transaction(tmp_path: Path) -> None:
    from liteshift.store.models import EmbeddingIn

    store = _open(tmp_path / "knn.db")
    try:
        near = store.create_embedding(EmbeddingIn("m", "a", "x", tuple([0.1] * DIM)))
        store.create_embedding(EmbeddingIn("m", "b", "x", tuple([0.9] * DIM)))
        for _ in range(2):  # the second run takes the transactional path straight away
            future = store.submit(store.search_embeddings, tuple([0.1] * DIM), 1)
            assert future.done()
            assert [n.embedding.id for n in future.result()] == [near.id]
        assert "search_embeddings" in store._snapshot_reads
        assert "get_message" not in store._snapshot_reads
    finally:
        store.close()


def test_a_read_far_over_budget_is_interrupted_and_rerun_in_the_pool(tmp_path: Path) -> None:
    # A budget of 1 µs: the 1,000-row page runs past 10 budgets within SQLite, is interrupted
    # and answered by the pool, correctly; the operation then skips the inline attempt.
    store = _open_engine(tmp_path / "slow.db", inline_read_budget_seconds=1e-6)
    try:
        futures = [
            store.submit(store.create_message, MessageIn("c", "u", str(i))) for i in range(1000)
        ]
        made = [f.result(timeout=30).id for f in futures]
        page = store.submit(store.list_messages, conversation_id="c", limit=1000)
        assert [m.id for m in page.result(timeout=30).items] == made
        assert store._inline_backoff["list_messages"] > time.perf_counter()
        later = store.submit(store.list_messages, conversation_id="c", limit=1000)
        assert not later.done()  # straight to the pool
        assert len(later.result(timeout=30).items) == 1000
    finally:
        store.close()


def test_inline_reads_can_be_turned_off(tmp_path: Path) -> None:
    store = _open_engine(tmp_path / "off.db", inline_read_budget_seconds=0)
    try:
        made = store.create_message(MessageIn("c", "user", "x"))
        assert store.get_message(made.id) == made
        assert store._inline_opened == 0
    finally:
        store.close()


# --- grouped inserts ---------------------------------------------------------------------------


def test_a_batch_of_inserts_with_a_duplicate_id_fails_only_the_duplicate(tmp_path: Path) -> None:
    from liteshift.store import Conflict
    from liteshift.store.models import EventIn

    store = _open(tmp_path / "dup.db", batch_max_wait_seconds=0.05)
    try:
        taken = store.create_message(MessageIn("c", "u", "first"))
        inputs = [MessageIn("c", "u", str(i)) for i in range(40)]
        inputs[17] = MessageIn("c", "u", "again", id=taken.id)
        same = str(uuid.uuid4())
        inputs[5] = MessageIn("c", "u", "one", id=same)
        inputs[6] = MessageIn("c", "u", "two", id=same)  # duplicate inside the same batch
        futures = [store.submit(store.create_message, m) for m in inputs]
        events = [store.submit(store.append_event, EventIn("t", {"i": i})) for i in range(5)]
        outcomes = [f.exception(timeout=30) for f in futures]
        assert isinstance(outcomes[17], Conflict)
        assert isinstance(outcomes[6], Conflict)
        assert [i for i, e in enumerate(outcomes) if e is not None] == [6, 17]
        stored = {m.id: m for m in store.list_messages(conversation_id="c", limit=1000).items}
        assert len(stored) == 1 + 38
        assert stored[same].content == "one"
        assert stored[taken.id].content == "first"
        for f, m in zip(futures, inputs, strict=True):
            if f.exception() is None:
                assert stored[f.result().id] == f.result()
                assert f.result().content == m.content
        assert len(store.list_events(limit=100).items) == 5
        assert all(e.result(timeout=30).payload["i"] == i for i, e in enumerate(events))
        assert store.batches_committed <= 10
    finally:
        store.close()


def test_grouped_inserts_are_durable_and_identical_to_single_ones(tmp_path: Path) -> None:
    from liteshift.store.models import AgentMessageIn, ProposalIn

    db = tmp_path / "group.db"
    store = _open(db, batch_max_wait_seconds=0.05)
    try:
        futures = [
            store.submit(store.create_proposal, ProposalIn("k", {"n": i, "f": 0.5}, "c"))
            for i in range(100)
        ] + [
            store.submit(store.create_agent_message, AgentMessageIn("c", "bot", f"{i}"))
            for i in range(100)
        ]
        made = [f.result(timeout=30) for f in futures]
    finally:
        store.close()
    reopened = _open_engine(db, inline_read_budget_seconds=0)
    try:
        proposals = reopened.list_proposals(limit=1000).items
        agents = reopened.list_agent_messages(limit=1000).items
        assert sorted(made[:100], key=lambda p: (p.created_at, p.id)) == list(proposals)
        assert sorted(made[100:], key=lambda p: (p.created_at, p.id)) == list(agents)
    finally:
        reopened.close()


def test_inserts_after_another_write_are_undone_alone(tmp_path: Path) -> None:
    """A run of inserts that does not open the transaction is undone to its own savepoint: the
    write before it (a cursor) and the other inserts still commit."""
    from liteshift.store import Conflict

    store = _open(tmp_path / "after.db", batch_max_wait_seconds=0.05)
    try:
        taken = store.create_message(MessageIn("c", "u", "first"))
        cursor = store.submit(store.advance_cursor, "etl", None, "p1")
        inputs = [MessageIn("c", "u", str(i)) for i in range(10)]
        inputs[4] = MessageIn("c", "u", "again", id=taken.id)
        futures = [store.submit(store.create_message, m) for m in inputs]
        outcomes = [f.exception(timeout=30) for f in futures]
        assert cursor.result(timeout=30).position == "p1"
        assert [i for i, e in enumerate(outcomes) if e is not None] == [4]
        assert isinstance(outcomes[4], Conflict)
        assert store.get_cursor("etl").position == "p1"
        assert len(store.list_messages(conversation_id="c", limit=100).items) == 1 + 9
    finally:
        store.close()


def test_short_statements_stay_inline_whatever_the_clock_says(tmp_path: Path) -> None:
    """A point read never reaches the progress handler: however long it took on the wall
    clock (a descheduled thread), it is not counted against the operation."""
    store = _open_engine(tmp_path / "short.db", inline_read_budget_seconds=1e-9)
    try:
        made = store.create_message(MessageIn("c", "user", "x"))
        for _ in range(5):
            future = store.submit(store.get_message, made.id)
            assert future.done() and future.result() == made
        assert "get_message" not in store._inline_backoff
    finally:
        store.close()


def test_a_lone_writer_does_not_wait_for_company(tmp_path: Path) -> None:
    """Sequential writes (one client) commit one by one without the batch wait; concurrent
    ones still share transactions."""
    store = _open(tmp_path / "lone.db", batch_max_wait_seconds=0.5)
    try:
        started = time.monotonic()
        for i in range(10):
            store.create_message(MessageIn("c", "u", str(i)))
        # Waiting for company each time would take 10 x 0.5 s; only the first write may wait.
        assert time.monotonic() - started < 3.0
        before = store.batches_committed
        futures = [store.submit(store.create_message, MessageIn("c", "u", "x")) for _ in range(50)]
        assert all(f.result(timeout=30) for f in futures)
        assert store.batches_committed - before <= 10
    finally:
        store.close()


def test_writes_to_a_promoted_file_fail_as_promoted_read_only(tmp_path: Path) -> None:
    """The fence a promotion leaves (a trigger) refuses every kind of write, alone or in a
    group of inserts, with the typed error; reads go on."""
    from liteshift.store import changelog
    from liteshift.store.models import EventIn

    db = tmp_path / "promoted.db"
    store = _open(db, batch_max_wait_seconds=0.05)
    try:
        kept = store.create_message(MessageIn("c", "u", "before"))
        changelog.install(str(db))
        with changelog.write_transaction(str(db)) as conn:
            changelog.mark_promoted(conn, "postgresql://app:***@db/app")
        futures: list[Future[Any]] = [
            store.submit(store.create_message, MessageIn("c", "u", str(i))) for i in range(5)
        ]
        futures.append(store.submit(store.append_event, EventIn("t", {})))
        futures.append(store.submit(store.advance_cursor, "etl", None, "p"))
        for future in futures:
            error = future.exception(timeout=30)
            assert isinstance(error, changelog.PromotedReadOnly), error
            assert str(db) in str(error)
        assert store.list_messages(conversation_id="c").items == (kept,)
    finally:
        store.close()


def test_the_batch_wait_ends_when_writes_stop_coming(tmp_path: Path) -> None:
    """After a batch with company the writer waits for more, but not the whole
    batch_max_wait_seconds when nothing else arrives."""
    store = _open(tmp_path / "quiet.db", batch_max_wait_seconds=1.0)
    try:
        futures = [
            store.submit(store.create_message, MessageIn("c", "u", str(i))) for i in range(20)
        ]
        assert all(f.result(timeout=30) for f in futures)
        store._last_batch_size = 2  # as after any batch with company: the next one may wait
        started = time.monotonic()
        store.create_message(MessageIn("c", "u", "alone"))
        assert time.monotonic() - started < 0.5  # not the 1 s wait
    finally:
        store.close()


# --- checkpoints off the writer ---------------------------------------------------------------


def _store(path: Path, **options: object) -> SqliteStore:
    """A migrated store opened directly, for the options `open_store` does not pass on."""
    _open(path).close()
    return SqliteStore(str(path), vector_dimension=DIM, **options)  # type: ignore[arg-type]


def _wal_size(db: Path) -> int:
    try:
        return os.stat(f"{db}-wal").st_size
    except FileNotFoundError:
        return 0


def test_the_writer_never_checkpoints_a_checkpointer_thread_does(tmp_path: Path) -> None:
    store = _store(tmp_path / "c.db")
    try:
        assert store._writer_conn.pragma("wal_autocheckpoint") == 0
        assert store._checkpointer is not None and store._checkpointer.is_alive()
        assert store._checkpointer.name == "liteshift-sqlite-checkpoint"
        page_size = store._writer_conn.pragma("page_size")
        assert store._writer_conn.pragma("journal_size_limit") == 8 * 1000 * page_size
        store.create_message(MessageIn("c", "user", "x"))
        deadline = time.monotonic() + 10
        while store.checkpoints == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.checkpoints > 0  # the timer ran one without any threshold crossed
    finally:
        store.close()
    assert store._checkpointer is not None and not store._checkpointer.is_alive()
    # checkpoint_pages=0: SQLite's own automatic checkpoint in the writer's COMMIT, as before.
    legacy = _store(tmp_path / "legacy.db", checkpoint_pages=0)
    try:
        assert legacy._writer_conn.pragma("wal_autocheckpoint") == 1000
        assert legacy._checkpointer is None
        legacy.create_message(MessageIn("c", "user", "x"))
    finally:
        legacy.close()
    with pytest.raises(StoreUnavailable, match="checkpoint_pages"):
        SqliteStore(str(tmp_path / "c.db"), vector_dimension=DIM, checkpoint_pages=-1)


def test_the_wal_stays_bounded_and_restarts_after_a_long_reader(tmp_path: Path) -> None:
    """Steady writes and reads: the WAL file stays near its limit; a reader holding a snapshot
    lets it grow (nothing may be checkpointed past it) and never blocks a write; once the
    reader lets go, the WAL is restarted and cut back to the limit."""
    db = tmp_path / "bounded.db"
    store = _store(db, checkpoint_pages=32)
    limit = 8 * 32 * int(store._writer_conn.pragma("page_size"))  # journal_size_limit
    stop = threading.Event()
    errors: list[BaseException] = []
    latencies: list[float] = []
    acked: list[str] = []

    def writer() -> None:
        try:
            while not stop.is_set():
                started = time.monotonic()
                acked.append(store.create_message(MessageIn("c", "user", "x" * 2000)).id)
                latencies.append(time.monotonic() - started)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            while not stop.is_set():
                store.list_messages(conversation_id="c", limit=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    try:
        steady_peak = 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            steady_peak = max(steady_peak, _wal_size(db))
            time.sleep(0.01)
        restarts_before = store.wal_restarts
        assert restarts_before > 0
        # A long-lived snapshot, like an online backup's or a promotion's copy.
        held = apsw.Connection(str(db))
        held.execute("BEGIN")
        held.execute("SELECT count(*) FROM messages").get  # noqa: B018 - takes the snapshot
        written = len(acked)
        time.sleep(3)
        assert len(acked) > written + 50  # writes went on
        grown = _wal_size(db)
        restarts_held = store.wal_restarts
        held.execute("COMMIT")
        held.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (
            store.wal_restarts == restarts_held or _wal_size(db) > 2 * limit
        ):
            time.sleep(0.05)
        after = _wal_size(db)
    finally:
        stop.set()
        for t in threads:
            t.join()
        store.close()
    assert errors == []
    # Restarted every few hundred KB; a few MB when this busy test process starves the
    # checkpointer thread of the GIL for a while (4 MB seen). Without restarts: 3 MB/s.
    assert steady_peak <= 8 * limit, (steady_peak, limit)
    assert grown > 16 * limit, (grown, limit)  # the held snapshot pinned the WAL (30-75 MB)
    assert restarts_held <= restarts_before + 1  # (one may have been mid-way)
    assert store.wal_restarts > restarts_held
    assert after <= 2 * limit, (after, limit)
    reopened = _open(db)
    try:
        count = reopened._writer_conn.execute("SELECT count(*) FROM messages").get
        assert count == len(acked)
    finally:
        reopened.close()


def test_close_checkpoints_the_whole_wal(tmp_path: Path) -> None:
    """close() copies everything into the main file and empties the WAL, even while another
    connection is open (SQLite itself only checkpoints when the last connection closes)."""
    db = tmp_path / "close.db"
    store = _store(db, checkpoint_pages=100_000)  # no threshold: only the timer and close
    other = apsw.Connection(str(db))
    try:
        ids = [store.create_message(MessageIn("c", "user", "y" * 500)).id for _ in range(200)]
        assert _wal_size(db) > 0
        store.close()
        assert _wal_size(db) == 0
        # `immutable` reads the main file alone, ignoring any WAL.
        copy = apsw.Connection(
            f"file:{db}?immutable=1", flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI
        )
        try:
            assert copy.execute("SELECT count(*) FROM messages").get == len(ids)
        finally:
            copy.close()
    finally:
        other.close()


_KILL_CHECKPOINT_SCRIPT = """
import sys
from liteshift.store.models import MessageIn
from liteshift.store.sqlite import SqliteStore
store = SqliteStore(sys.argv[1], vector_dimension=8, checkpoint_pages=16)
while True:
    made = store.create_message(MessageIn("c", "user", "z" * 3000))
    print(made.id, store.wal_restarts, flush=True)
"""


def test_acknowledged_writes_survive_kill_9_during_checkpoints(tmp_path: Path) -> None:
    """A process killed while its checkpointer copies and restarts the WAL loses nothing."""
    db = tmp_path / "kill-ckpt.db"
    _open(db).close()
    with subprocess.Popen(
        [sys.executable, "-c", _KILL_CHECKPOINT_SCRIPT, str(db)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as proc:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        # Until the checkpointer restarted the WAL a few times, then some more writes.
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the writer process died"
            lines.append(line)
            if int(line.split()[1]) >= 3:
                break
        lines += [proc.stdout.readline() for _ in range(200)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # Lines printed before the kill are acknowledged too; a torn last line is not.
        lines += [line for line in proc.stdout if line.endswith("\n")]
    complete = [line.split() for line in lines if line.endswith("\n")]
    assert max(int(restarts) for _, restarts in complete) >= 3
    acked = [made for made, _ in complete]
    store = _open(db)
    try:
        rows = store._writer_conn.execute("SELECT id FROM messages").fetchall()
    finally:
        store.close()
    assert len(acked) > 200
    assert set(acked) <= {r[0] for r in rows}


def test_point_json_of_a_timestamp_in_another_text(tmp_path: Path) -> None:
    """A row whose timestamp is not the text this store writes (another tool wrote it) cannot
    be copied into the document as is: that row is mapped and serialized instead."""
    db = tmp_path / "other.db"
    store = _open(db)
    made = store.create_message(MessageIn("c", "user", "x"))
    key = str(uuid.uuid4())
    other = apsw.Connection(str(db))
    with other:
        other.execute(
            "INSERT INTO messages (id, conversation_id, role, content, metadata, created_at) "
            "VALUES (?, 'c', 'user', 'y', '{}', '2026-01-01T00:00:00.5Z')",
            (key,),
        )
    other.close()
    try:
        document = store.get_message_json(key)
        assert json.loads(document)["created_at"] == "2026-01-01T00:00:00.500000Z"
        assert document == to_json(store.get_message(key).__dict__)
        # The usual row still gets SQLite's document, equal to the serialized object.
        assert store.get_message_json(made.id) == to_json(store.get_message(made.id).__dict__)
        with pytest.raises(NotFound):
            store.get_message_json(str(uuid.uuid4()))
        # Each of those was one statement: the operation still reads without a transaction.
        assert "get_message" not in store._snapshot_reads
    finally:
        store.close()
