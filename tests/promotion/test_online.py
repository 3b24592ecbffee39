"""Online promotion against real SQLite stores under write and a real Postgres.

Writers go through the real SQLite store (`open_store`), concurrently with the copy; "crashes"
are exceptions raised from the progress callback at a chosen point, after which a NEW
OnlinePromotion resumes on the same file, as a restarted sidecar would.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest

from liteshift.local.postgres import start_postgres
from liteshift.promotion import online
from liteshift.promotion.errors import (
    AlreadyPromoted,
    LooseData,
    PromotionAborted,
    PromotionNotPrepared,
    TargetNotEmpty,
    VerificationFailed,
)
from liteshift.promotion.loose import scan
from liteshift.promotion.online import OnlineProgress, OnlinePromotion, promoted_marker
from liteshift.promotion.readiness import check_readiness
from liteshift.promotion.verify import verify
from liteshift.store import Store, changelog, open_store
from liteshift.store.changelog import PromotedReadOnly
from liteshift.store.connect import sqlite_connect
from liteshift.store.errors import StoreUnavailable
from liteshift.store.models import EmbeddingIn, MessageIn, ProposalIn
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot
from tests.promotion.conftest import DIMENSION
from tests.promotion.load import postgres_ids


class Crash(Exception):
    """Stands for the sidecar dying at a chosen point."""


@pytest.fixture
def store(filled_sqlite: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite://{filled_sqlite}", vector_dimension=DIMENSION)
    try:
        yield opened
    finally:
        opened.close()


def _assert_same_data(sqlite_path: Path, dsn: str) -> dict[str, int]:
    """Full row counts and checksums of every table equal on both engines; returns counts."""
    with SqliteSnapshot(str(sqlite_path)) as snapshot:
        scanned = scan(snapshot)
    assert scanned.report.ok, scanned.report.summary()
    report = verify(dsn, scanned.checksums)
    assert report.ok, [t.describe() for t in report.tables if not t.ok]
    return {name: c.rows for name, c in scanned.checksums.items()}


def _pg(dsn: str, query: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return list(conn.execute(query, params).fetchall())


@contextlib.contextmanager
def _raw(path: Path) -> Iterator[apsw.Connection]:
    """A plain connection of another process/tool, bypassing the store's validation."""
    conn = sqlite_connect(str(path), create=False)
    try:
        yield conn
    finally:
        conn.close()


def _raw_execute(path: Path, *statements: str) -> None:
    """Run `statements` on the file as another process/tool would, one after the other."""
    with _raw(path) as conn:
        for statement in statements:
            conn.execute(statement)


def _vector() -> tuple[float, float, float]:
    return (0.5, -1.0, 2.0)


@dataclass
class Writer:
    """Keeps writing through the store (inserts, updates, deletes) and records what was
    acknowledged."""

    store: Store
    messages: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    live_embeddings: list[str] = field(default_factory=list)
    cursor: str | None = None
    errors: list[BaseException] = field(default_factory=list)
    writes: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        try:
            i = 0
            while not self.stop.is_set():
                i += 1
                m = self.store.create_message(
                    MessageIn(conversation_id="live", role="user", content=f"live {i}")
                )
                self.messages.append(m.id)
                if i % 3 == 0:
                    p = self.store.create_proposal(ProposalIn(kind="k", payload={"i": i}))
                    self.store.decide_proposal(p.id, "accepted", reason=f"r{i}")
                    self.accepted.append(p.id)
                if i % 2 == 0:
                    e = self.store.create_embedding(
                        EmbeddingIn(owner_kind="m", owner_id=m.id, model="m", vector=_vector())
                    )
                    self.live_embeddings.append(e.id)
                if i % 4 == 0 and self.live_embeddings:
                    gone = self.live_embeddings.pop(0)
                    self.store.delete_embedding(gone)
                    self.deleted.append(gone)
                if i % 5 == 0:
                    self.cursor = self.store.advance_cursor("live", self.cursor, f"p{i}").position
                self.writes = i
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self.run, name="test-writer")
        self.thread.start()
        return self

    def wait_for(self, more: int, timeout: float = 30.0) -> None:
        target = self.writes + more
        deadline = time.monotonic() + timeout
        while self.writes < target and not self.errors:
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.005)

    def pause(self) -> None:
        """Stop writing and wait for the last write to be acknowledged (the drain)."""
        self.stop.set()
        self.thread.join(timeout=60)
        assert not self.thread.is_alive()

    def __exit__(self, *exc: object) -> None:
        self.pause()


def _during(phase: str, action: Callable[[], None]) -> Callable[[OnlineProgress], None]:
    """A progress callback running `action` once, at the first step of `phase` past 0."""
    done = False

    def progress(step: OnlineProgress) -> None:
        nonlocal done
        if not done and step.phase == phase and step.done > 0:
            done = True
            action()

    return progress


def test_copy_under_concurrent_writes_then_finish_keeps_every_acknowledged_write(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    with Writer(store) as writer:
        # Writes land while the copy reads its snapshot (small batches: many steps).
        promotion = OnlinePromotion(
            str(filled_sqlite),
            postgres_dsn,
            batch_rows=5,
            progress=_during("copy", lambda: writer.wait_for(20)),
        )
        prepared = promotion.prepare()
        writer.wait_for(20)  # and more after prepare(): the final delta is not empty
        writer.pause()
        assert not writer.errors, writer.errors
        assert promoted_marker(str(filled_sqlite)) is None
        finished = promotion.finish()

    assert prepared.verification is not None and prepared.verification.ok
    assert prepared.catchup_passes >= 1 and prepared.keys_replayed > 0
    assert finished.keys_replayed > 0
    assert finished.seconds < 1.0
    assert set(finished.steps) == {"connect", "lock", "replay", "marker"}
    assert sum(finished.steps.values()) <= finished.seconds
    counts = _assert_same_data(filled_sqlite, postgres_dsn)
    assert finished.rows == counts
    assert set(writer.messages) <= postgres_ids(postgres_dsn, "messages")
    accepted: dict[str, str] = dict(
        _pg(postgres_dsn, "SELECT id, status FROM proposals WHERE id = ANY(%s)", (writer.accepted,))
    )
    assert accepted == dict.fromkeys(writer.accepted, "accepted")
    embeddings = postgres_ids(postgres_dsn, "embeddings")
    assert writer.deleted and not set(writer.deleted) & embeddings
    assert set(writer.live_embeddings) <= embeddings
    assert _pg(postgres_dsn, "SELECT position FROM etl_cursors WHERE name = 'live'") == [
        (writer.cursor,)
    ]
    marker = promoted_marker(str(filled_sqlite))
    assert marker is not None and marker.promoted_at == finished.promoted_at


def test_a_delete_and_an_update_during_the_copy_are_replayed(
    filled_sqlite: Path, store: Store, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(online, "REPLAY_CHUNK", 2)  # several chunks per pass, one transaction
    victim = store.list_embeddings(limit=1).items[0].id
    pending = store.create_proposal(ProposalIn(kind="k", payload={"x": 1}))
    steps: list[OnlineProgress] = []

    def write_during_copy() -> None:
        store.delete_embedding(victim)
        store.decide_proposal(pending.id, "rejected", reason="changed during the copy")
        store.advance_cursor("worker-1", store.get_cursor("worker-1").position, "moved")

    progress = _during("copy", write_during_copy)

    def record(step: OnlineProgress) -> None:
        steps.append(step)
        progress(step)

    prepared = OnlinePromotion(
        str(filled_sqlite), postgres_dsn, batch_rows=5, progress=record
    ).prepare()

    # Postgres already holds the changes after prepare(), before any write pause.
    assert _pg(postgres_dsn, "SELECT 1 FROM embeddings WHERE id = %s", (victim,)) == []
    assert _pg(
        postgres_dsn, "SELECT status, reason FROM proposals WHERE id = %s", (pending.id,)
    ) == [("rejected", "changed during the copy")]
    assert _pg(postgres_dsn, "SELECT position FROM etl_cursors WHERE name = 'worker-1'") == [
        ("moved",)
    ]
    assert prepared.keys_replayed >= 3
    assert prepared.rows_copied["embeddings"] == prepared.rows["embeddings"] + 1
    # Phases never go backwards (the sidecar maps them onto states).
    order = ["readiness", "scan", "copy", "catchup", "verify"]
    phases = [order.index(s.phase) for s in steps]
    assert phases == sorted(phases) and set(phases) == set(range(len(order)))
    _assert_same_data(filled_sqlite, postgres_dsn)


def test_a_loose_value_written_during_catch_up_refuses(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    def legacy_write() -> None:
        # Valid for the STRICT table (TEXT), not JSON: Postgres would reject it.
        _raw_execute(
            filled_sqlite,
            "INSERT INTO messages VALUES ('loose-1', 'c', 'user', NULL, 'x', '{\"a\":', "
            "'2026-01-01T00:00:00.000000Z')",
        )

    promotion = OnlinePromotion(
        str(filled_sqlite), postgres_dsn, batch_rows=5, progress=_during("copy", legacy_write)
    )
    with pytest.raises(LooseData, match="loose-1") as raised:
        promotion.prepare()
    values = raised.value.report.values  # type: ignore[attr-defined]
    assert [(v.table, v.key, v.column) for v in values] == [("messages", "loose-1", "metadata")]
    assert promoted_marker(str(filled_sqlite)) is None
    assert _pg(postgres_dsn, "SELECT 1 FROM messages WHERE id = 'loose-1'") == []
    with pytest.raises(PromotionNotPrepared):
        promotion.finish()


def test_a_loose_value_in_the_final_delta_refuses_finish(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    promotion.prepare()
    _raw_execute(
        filled_sqlite,
        "UPDATE etl_cursors SET updated_at = 'yesterday' WHERE name = 'worker-2'",
        "UPDATE etl_cursors SET position = 'seen' WHERE name = 'worker-3'",
    )
    with pytest.raises(LooseData, match="worker-2"):
        promotion.finish()
    assert promoted_marker(str(filled_sqlite)) is None
    # Nothing of the refused delta reached Postgres (one transaction).
    assert _pg(postgres_dsn, "SELECT position FROM etl_cursors WHERE name = 'worker-3'") != [
        ("seen",)
    ]
    _raw_execute(  # SQLite is still the primary: it takes writes
        filled_sqlite,
        "UPDATE etl_cursors SET updated_at = '2026-01-01T00:00:00.000000Z' WHERE name = 'worker-2'",
    )
    promotion.finish()
    _assert_same_data(filled_sqlite, postgres_dsn)


def _crash_after(phase: str, steps: int) -> Callable[[OnlineProgress], None]:
    seen = 0

    def progress(step: OnlineProgress) -> None:
        nonlocal seen
        if step.phase == phase:
            seen += 1
            if seen == steps:
                raise Crash(phase)

    return progress


def test_resume_after_a_crash_mid_copy_ends_with_equal_checksums(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    with Writer(store) as writer:
        first = OnlinePromotion(
            str(filled_sqlite), postgres_dsn, batch_rows=5, progress=_crash_after("copy", 12)
        )
        with pytest.raises(Crash):
            first.prepare()
        writer.wait_for(10)
        # The capture stayed installed: the writes after the crash are recorded.
        with _raw(filled_sqlite) as conn:
            assert changelog.installed(conn)
        second = OnlinePromotion(str(filled_sqlite), postgres_dsn, batch_rows=5)
        second.prepare()
        writer.pause()
        assert not writer.errors, writer.errors
        second.finish()
    _assert_same_data(filled_sqlite, postgres_dsn)
    assert set(writer.messages) <= postgres_ids(postgres_dsn, "messages")


def test_resume_after_a_crash_mid_catch_up_empties_the_copied_target_first(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    with Writer(store) as writer:
        progress = _during("copy", lambda: writer.wait_for(10))
        crash = _crash_after("catchup", 1)

        def both(step: OnlineProgress) -> None:
            progress(step)
            crash(step)

        with pytest.raises(Crash):
            OnlinePromotion(str(filled_sqlite), postgres_dsn, batch_rows=5, progress=both).prepare()
        # The copy had committed: the target holds rows of this file's copy.
        assert _pg(postgres_dsn, "SELECT count(*) FROM messages")[0][0] > 0
        second = OnlinePromotion(str(filled_sqlite), postgres_dsn)
        second.prepare()
        writer.pause()
        second.finish()
    _assert_same_data(filled_sqlite, postgres_dsn)


def test_abort_leaves_sqlite_primary_and_the_target_empty(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    promotion.prepare()
    store.create_message(MessageIn(conversation_id="c", role="user", content="before abort"))
    promotion.abort()
    promotion.abort()  # idempotent
    for spec in DOMAIN_TABLES:
        assert _pg(postgres_dsn, f"SELECT count(*) FROM {spec.name}") == [(0,)]
    assert promoted_marker(str(filled_sqlite)) is None
    assert changelog.read_file_meta(str(filled_sqlite)) is None
    with _raw(filled_sqlite) as conn:
        assert not changelog.installed(conn)
        leftovers = conn.execute(
            "SELECT name FROM sqlite_schema WHERE name LIKE '_liteshift%'"
        ).fetchall()
        assert leftovers == []
    after = store.create_message(MessageIn(conversation_id="c", role="user", content="after abort"))
    assert store.get_message(after.id).content == "after abort"
    with pytest.raises(PromotionNotPrepared):
        promotion.finish()
    with pytest.raises(PromotionAborted):  # an aborted object stays aborted
        promotion.prepare()
    # A later promotion starts from scratch and succeeds.
    again = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    again.prepare()
    again.finish()
    _assert_same_data(filled_sqlite, postgres_dsn)


def test_abort_from_another_thread_stops_a_running_prepare(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    in_copy = threading.Event()
    release = threading.Event()

    def hold(step: OnlineProgress) -> None:
        if step.phase == "copy" and not in_copy.is_set():
            in_copy.set()
            assert release.wait(30)

    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn, batch_rows=5, progress=hold)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            promotion.prepare()
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run)
    runner.start()
    assert in_copy.wait(30)
    aborter = threading.Thread(target=promotion.abort)
    aborter.start()
    time.sleep(0.1)
    release.set()
    runner.join(30)
    aborter.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], PromotionAborted)
    assert changelog.read_file_meta(str(filled_sqlite)) is None
    assert _pg(postgres_dsn, "SELECT count(*) FROM messages") == [(0,)]


def test_the_promoted_marker_is_set_only_by_finish(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    # The server trusts local logins: a password in the URL is accepted, and must never be
    # written into the SQLite file.
    with_password = postgres_dsn.replace("@", ":s3cret@", 1)
    promotion = OnlinePromotion(str(filled_sqlite), with_password)
    assert promoted_marker(str(filled_sqlite)) is None
    promotion.prepare()
    assert promoted_marker(str(filled_sqlite)) is None
    finished = promotion.finish()
    marker = promoted_marker(str(filled_sqlite))
    assert marker is not None
    assert marker.promoted_at == finished.promoted_at
    assert marker.target == postgres_dsn.replace("@", ":***@", 1)
    assert "s3cret" not in filled_sqlite.read_bytes().decode("latin-1")
    # The promoted file is the rollback point: it refuses writes, and cannot be promoted or
    # aborted again.
    with pytest.raises(PromotedReadOnly, match="read-only"):
        store.create_message(MessageIn(conversation_id="c", role="user", content="late"))
    with pytest.raises(AlreadyPromoted):
        OnlinePromotion(str(filled_sqlite), postgres_dsn).prepare()
    with pytest.raises(AlreadyPromoted):
        promotion.abort()
    assert promoted_marker(str(filled_sqlite)) == marker


def test_a_target_with_rows_of_its_own_is_refused_and_kept(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    check_readiness(postgres_dsn).raise_if_failed()
    _pg_exec(postgres_dsn, "INSERT INTO etl_cursors VALUES ('theirs', 'p', now())")
    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    with pytest.raises(TargetNotEmpty):
        promotion.prepare()
    assert changelog.read_file_meta(str(filled_sqlite)) is None  # the file was not touched
    promotion.abort()
    assert _pg(postgres_dsn, "SELECT name FROM etl_cursors") == [("theirs",)]


def _pg_exec(dsn: str, statement: str) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(statement)


def test_finish_refuses_a_replayed_row_that_postgres_stores_differently(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    promotion.prepare()
    # Something on the Postgres side alters rows as they are written.
    _pg_exec(
        postgres_dsn,
        "CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.content := NEW.content || '!'; RETURN NEW; END $$; "
        "CREATE TRIGGER tamper BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION tamper()",
    )
    message = store.create_message(MessageIn(conversation_id="c", role="user", content="exact"))
    with pytest.raises(VerificationFailed, match=message.id):
        promotion.finish()
    assert promoted_marker(str(filled_sqlite)) is None
    assert _pg(postgres_dsn, "SELECT 1 FROM messages WHERE id = %s", (message.id,)) == []
    _pg_exec(postgres_dsn, "DROP TRIGGER tamper ON messages")
    promotion.finish()  # the same delta, now stored faithfully
    _assert_same_data(filled_sqlite, postgres_dsn)


def test_finish_refuses_when_the_capture_was_removed_behind_its_back(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn)
    promotion.prepare()
    _raw_execute(filled_sqlite, "DROP TRIGGER _liteshift_capture_messages_insert")
    with pytest.raises(VerificationFailed, match="capture"):
        promotion.finish()
    assert promoted_marker(str(filled_sqlite)) is None


def test_finish_needs_a_prepare_on_the_same_object(filled_sqlite: Path, postgres_dsn: str) -> None:
    with pytest.raises(PromotionNotPrepared):
        OnlinePromotion(str(filled_sqlite), postgres_dsn).finish()


def test_postgres_stopping_mid_promotion_leaves_sqlite_primary_and_a_retry_succeeds(
    filled_sqlite: Path, store: Store
) -> None:
    server = start_postgres()
    try:
        dsn = server.create_database("online_stop")
        stopped: list[str] = []

        def stop_in_catch_up(step: OnlineProgress) -> None:
            if step.phase == "copy" and step.done > 0 and not stopped:
                store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
            if step.phase == "catchup" and not stopped:
                stopped.append(step.phase)
                server.pause()

        promotion = OnlinePromotion(
            str(filled_sqlite), dsn, batch_rows=5, progress=stop_in_catch_up
        )
        with pytest.raises(StoreUnavailable) as info:
            promotion.prepare()
        assert stopped == ["catchup"] and "\n" not in str(info.value)
        # SQLite is the primary all along; abort() works without Postgres.
        during = store.create_message(MessageIn(conversation_id="c", role="user", content="y"))
        promotion.abort()
        assert promoted_marker(str(filled_sqlite)) is None
        meta = changelog.read_file_meta(str(filled_sqlite))
        assert meta is not None and meta.copy_target == promotion.target  # ours to empty
        with _raw(filled_sqlite) as conn:
            assert not changelog.installed(conn)

        server.resume()
        # The rows the first copy left are this file's: the retry replaces them.
        assert _pg(dsn, "SELECT count(*) FROM messages")[0][0] > 0
        retry = OnlinePromotion(str(filled_sqlite), dsn)
        retry.prepare()
        retry.finish()
        _assert_same_data(filled_sqlite, dsn)
        assert _pg(dsn, "SELECT content FROM messages WHERE id = %s", (during.id,)) == [("y",)]
    finally:
        server.stop()


_DIE_IN_COPY = """
import sys, time
from liteshift.promotion.online import OnlinePromotion

def progress(step):
    if step.phase == "copy" and step.done > 0:
        print("copying", flush=True)
        time.sleep(60)  # SIGKILLed here, mid-copy, its Postgres transaction open

OnlinePromotion(sys.argv[1], sys.argv[2], batch_rows=5, progress=progress).prepare()
"""


def test_a_process_killed_mid_copy_is_resumed_by_a_new_one(
    filled_sqlite: Path, store: Store, postgres_dsn: str
) -> None:
    with Writer(store) as writer:
        child = subprocess.Popen(
            [sys.executable, "-c", _DIE_IN_COPY, str(filled_sqlite), postgres_dsn],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "copying"
            writer.wait_for(10)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(30)
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        writer.wait_for(10)
        resumed = OnlinePromotion(str(filled_sqlite), postgres_dsn)
        resumed.prepare()
        writer.pause()
        assert not writer.errors, writer.errors
        resumed.finish()
    _assert_same_data(filled_sqlite, postgres_dsn)
    assert set(writer.messages) <= postgres_ids(postgres_dsn, "messages")


def test_a_write_racing_finish_waits_for_it_and_is_refused_never_lost(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    outcome: list[BaseException | None] = []
    racer: list[threading.Thread] = []

    def late_write() -> None:
        with _raw(filled_sqlite) as conn:  # another writer that ignored the pause
            try:
                conn.execute(
                    "INSERT INTO etl_cursors VALUES ('late', 'p', '2026-01-01T00:00:00.000000Z')"
                )
                outcome.append(None)
            except apsw.Error as exc:
                outcome.append(exc)

    def race(step: OnlineProgress) -> None:
        if step.phase == "final" and not racer:
            racer.append(threading.Thread(target=late_write))
            racer[0].start()
            time.sleep(0.2)  # the write is now waiting for finish()'s write lock
            assert not outcome

    promotion = OnlinePromotion(str(filled_sqlite), postgres_dsn, progress=race)
    promotion.prepare()
    promotion.finish()
    racer[0].join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], apsw.ConstraintError)
    assert "read-only" in str(outcome[0])
    _assert_same_data(filled_sqlite, postgres_dsn)
    assert _pg(postgres_dsn, "SELECT 1 FROM etl_cursors WHERE name = 'late'") == []
