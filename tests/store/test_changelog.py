"""Change capture in a real SQLite file, installed while a real store keeps writing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import apsw
import pytest

from liteshift.store import changelog, open_store
from liteshift.store.connect import sqlite_connect
from liteshift.store.errors import StoreUnavailable
from liteshift.store.migrations import MigrationRunner
from liteshift.store.models import AgentMessageIn, EmbeddingIn, EventIn, MessageIn, ProposalIn
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot
from liteshift.store.urls import parse_url

DIM = 3


def _changes(path: Path, after: int = 0) -> list[tuple[str, object]]:
    conn = sqlite_connect(str(path), create=False, query_only=True)
    try:
        return [
            (str(t), k)
            for t, k in conn.execute(
                "SELECT table_name, key FROM _liteshift_changes WHERE seq > ? ORDER BY seq",
                (after,),
            )
        ]
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    open_store(f"sqlite://{path}", migrate=True, vector_dimension=DIM).close()
    return path


def test_capture_installed_under_a_running_store_records_every_write(db: Path) -> None:
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        before = store.create_message(MessageIn(conversation_id="c", role="user", content="a"))
        meta = changelog.install(str(db))
        # The store's writer and readers keep working across the schema change.
        message = store.create_message(MessageIn(conversation_id="c", role="user", content="b"))
        proposal = store.create_proposal(ProposalIn(kind="k", payload={}))
        store.decide_proposal(proposal.id, "accepted")
        embedding = store.create_embedding(
            EmbeddingIn(owner_kind="m", owner_id="o", model="m", vector=(1.0, 2.0, 3.0))
        )
        store.delete_embedding(embedding.id)
        store.advance_cursor("w", None, "1")
        store.advance_cursor("w", "1", "2")
        assert store.get_message(before.id).content == "a"
        assert store.search_embeddings((1.0, 2.0, 3.0), 1) == []
    finally:
        store.close()
    assert meta.promoted_at is None and len(meta.capture_id) == 32
    assert _changes(db) == [
        ("messages", message.id),
        ("proposals", proposal.id),
        ("proposals", proposal.id),
        # The kNN index tables (vector_index_*) are derived: only `embeddings` is captured.
        ("embeddings", embedding.id),
        ("embeddings", embedding.id),
        ("etl_cursors", "w"),
        ("etl_cursors", "w"),
    ]


def test_install_is_idempotent_and_keeps_the_capture_identity(db: Path) -> None:
    first = changelog.install(str(db))
    second = changelog.install(str(db))
    assert first.capture_id == second.capture_id
    conn = sqlite_connect(str(db), create=False)
    try:
        assert changelog.installed(conn)
        triggers = conn.execute(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"
        ).fetchone()
        assert triggers == (3 * len(DOMAIN_TABLES),)
    finally:
        conn.close()


def test_an_update_that_changes_the_key_records_both_keys(db: Path) -> None:
    changelog.install(str(db))
    conn = sqlite_connect(str(db), create=False)
    try:
        conn.execute("INSERT INTO etl_cursors VALUES ('old', 'p', '2026-01-01T00:00:00.000000Z')")
        conn.execute("UPDATE etl_cursors SET name = 'new' WHERE name = 'old'")
        conn.execute("UPDATE etl_cursors SET position = 'q' WHERE name = 'new'")
    finally:
        conn.close()
    assert _changes(db) == [
        ("etl_cursors", "old"),
        ("etl_cursors", "old"),
        ("etl_cursors", "new"),
        ("etl_cursors", "new"),
    ]


def test_a_snapshot_position_partitions_the_history_and_survives_pruning(db: Path) -> None:
    changelog.install(str(db))
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        early = store.create_message(MessageIn(conversation_id="c", role="user", content="1"))
        with SqliteSnapshot(str(db)) as snapshot:
            position = changelog.position(snapshot.conn)
            late = store.create_message(MessageIn(conversation_id="c", role="user", content="2"))
            # Still the snapshot's view: the later write is neither in the rows nor before
            # the position.
            assert changelog.position(snapshot.conn) == position
            assert snapshot.count(DOMAIN_TABLES[0]) == 1
        assert position == 1
        assert _changes(db, position) == [("messages", late.id)]
        assert changelog.prune(str(db), position) == 1
        assert _changes(db) == [("messages", late.id)]
        # Pruning every row does not move the position back (AUTOINCREMENT never reuses).
        changelog.prune(str(db), 10)
        third = store.create_message(MessageIn(conversation_id="c", role="user", content="3"))
    finally:
        store.close()
    conn = sqlite_connect(str(db), create=False, query_only=True)
    try:
        assert changelog.position(conn) == 3
        assert changelog.changed_keys(conn, 2, 3) == {"messages": [third.id]}
        assert changelog.changed_keys(conn, 0, 1) == {}  # pruned
        assert early.id not in str(changelog.changed_keys(conn, 0, 3))
    finally:
        conn.close()


def test_typed_rows_by_key_returns_text_as_bytes_even_when_not_utf8(db: Path) -> None:
    conn = sqlite_connect(str(db), create=False)
    try:
        conn.execute(
            "INSERT INTO etl_cursors VALUES ('bad', CAST(x'41ff' AS TEXT), "
            "'2026-01-01T00:00:00.000000Z')"
        )
        conn.execute("INSERT INTO etl_cursors VALUES ('good', 'p', 'x')")
        spec = next(s for s in DOMAIN_TABLES if s.name == "etl_cursors")
        keys = ["bad", "good", "gone"] + [f"k{i}" for i in range(changelog.KEY_CHUNK)]
        rows = sorted(changelog.typed_rows_by_key(conn, spec, keys))
    finally:
        conn.close()
    assert rows == [
        ("text", b"bad", "text", b"A\xff", "text", b"2026-01-01T00:00:00.000000Z"),
        ("text", b"good", "text", b"p", "text", b"x"),
    ]


def test_the_store_and_its_migrations_ignore_the_capture_tables(db: Path) -> None:
    changelog.install(str(db))
    with MigrationRunner(parse_url(f"sqlite://{db}")) as runner:
        assert {s.state for s in runner.status()} == {"applied"}
        runner.up()
    store = open_store(f"sqlite://{db}", migrate=True, vector_dimension=DIM)
    try:
        store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
    finally:
        store.close()
    assert [t for t, _ in _changes(db)] == ["messages"]


def test_remove_drops_the_capture_and_is_idempotent(db: Path) -> None:
    changelog.install(str(db))
    changelog.set_copy_target(str(db), "postgresql://u:***@h/db")
    changelog.remove(str(db), keep_meta=True)
    meta = changelog.read_file_meta(str(db))
    assert meta is not None and meta.copy_target == "postgresql://u:***@h/db"
    # Installed again over the kept meta row: a new changelog is a new capture identity.
    again = changelog.install(str(db))
    assert again.capture_id != meta.capture_id and again.copy_target == meta.copy_target
    changelog.remove(str(db), keep_meta=True)
    changelog.remove(str(db), keep_meta=False)
    changelog.remove(str(db), keep_meta=False)
    assert changelog.read_file_meta(str(db)) is None
    conn = sqlite_connect(str(db), create=False)
    try:
        names = {
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_schema WHERE name LIKE '%liteshift%'")
        }
        assert names == set()
        conn.execute("INSERT INTO etl_cursors VALUES ('w', 'p', 'x')")  # nothing captures it
    finally:
        conn.close()


def test_the_promoted_marker_fences_every_domain_table(db: Path) -> None:
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:  # one row per table, so a DELETE has a row to be refused on
        store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
        store.create_proposal(ProposalIn(kind="k", payload={}))
        store.append_event(EventIn(type="t", payload={}))
        store.create_agent_message(AgentMessageIn(conversation_id="c", agent="a", content="x"))
        store.create_embedding(
            EmbeddingIn(owner_kind="m", owner_id="o", model="m", vector=(1.0, 2.0, 3.0))
        )
        store.advance_cursor("w", None, "1")
    finally:
        store.close()
    changelog.install(str(db))
    with changelog.write_transaction(str(db)) as conn:
        changelog.mark_promoted(conn, "postgresql://u:***@h/db")
    meta = changelog.read_file_meta(str(db))
    assert meta is not None and meta.promoted_at is not None
    assert meta.target == "postgresql://u:***@h/db"
    conn = sqlite_connect(str(db), create=False)
    try:
        assert not changelog.installed(conn)
        with pytest.raises(apsw.ConstraintError, match="promoted to Postgres"):
            conn.execute("INSERT INTO etl_cursors VALUES ('v', 'p', 'x')")
        for spec in DOMAIN_TABLES:
            with pytest.raises(apsw.ConstraintError, match="read-only"):
                conn.execute(f"DELETE FROM {spec.name}")
    finally:
        conn.close()
    with pytest.raises(StoreUnavailable, match="promoted"):
        changelog.install(str(db))
    with pytest.raises(StoreUnavailable, match="promoted"):
        changelog.remove(str(db), keep_meta=False)


@pytest.mark.parametrize("index", ["vec", "vss"])
def test_the_knn_index_keeps_answering_after_capture_is_installed(
    tmp_path: Path, index: Literal["vec", "vss"]
) -> None:
    path = tmp_path / "knn.db"
    store = open_store(f"sqlite://{path}", migrate=True, vector_dimension=DIM, vector_index=index)
    try:
        a = store.create_embedding(
            EmbeddingIn(owner_kind="m", owner_id="o", model="m", vector=(1.0, 0.0, 0.0))
        )
        changelog.install(str(path))
        b = store.create_embedding(
            EmbeddingIn(owner_kind="m", owner_id="o", model="m", vector=(0.0, 1.0, 0.0))
        )
        hits = store.search_embeddings((0.0, 1.0, 0.0), 2)
        assert [h.embedding.id for h in hits] == [b.id, a.id]
        store.delete_embedding(a.id)
        assert [h.embedding.id for h in store.search_embeddings((1.0, 0.0, 0.0), 2)] == [b.id]
    finally:
        store.close()
    # Only the base table is captured, never the derived index tables.
    assert _changes(path) == [("embeddings", b.id), ("embeddings", a.id)]


def _liteshift_objects(path: Path) -> set[str]:
    conn = sqlite_connect(str(path), create=False, query_only=True)
    try:
        return {
            str(r[0])
            for r in conn.execute("SELECT name FROM sqlite_schema WHERE name LIKE '%liteshift%'")
        }
    finally:
        conn.close()


def test_file_state_tells_plain_captured_and_promoted_files_apart(db: Path) -> None:
    plain = changelog.file_state(str(db))
    assert not plain.present and not plain.promoted
    changelog.install(str(db))
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
    finally:
        store.close()
    captured = changelog.file_state(str(db))
    assert captured.present and not captured.promoted
    assert captured.capture_triggers == 3 * len(DOMAIN_TABLES)
    assert captured.fence_triggers == 0 and captured.pending_changes == 1
    with changelog.write_transaction(str(db)) as conn:
        changelog.mark_promoted(conn, "postgresql://u:***@h/db")
    promoted = changelog.file_state(str(db))
    assert promoted.promoted and promoted.capture_triggers == 0
    assert promoted.fence_triggers == 3 * len(DOMAIN_TABLES)
    assert promoted.meta is not None and promoted.meta.target == "postgresql://u:***@h/db"


def test_remove_all_drops_a_capture_and_the_store_stops_logging(db: Path) -> None:
    changelog.install(str(db))
    changelog.set_copy_target(str(db), "postgresql://u:***@h/db")
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
    finally:
        store.close()
    removed = changelog.remove_all(str(db), promoted=False)
    assert removed.pending_changes == 1 and removed.capture_triggers == 3 * len(DOMAIN_TABLES)
    # The meta row goes too: nothing in the file claims a target as filled by its copy.
    assert _liteshift_objects(db) == set()
    assert changelog.remove_all(str(db), promoted=False) == changelog.CaptureState(None, 0, 0, None)
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        store.create_message(MessageIn(conversation_id="c", role="user", content="y"))
    finally:
        store.close()
    assert _liteshift_objects(db) == set()


def test_remove_all_undoes_a_promotion_only_when_asked(db: Path) -> None:
    changelog.install(str(db))
    with changelog.write_transaction(str(db)) as conn:
        changelog.mark_promoted(conn, "postgresql://u:***@h/db")
    with pytest.raises(StoreUnavailable, match="promoted to Postgres"):
        changelog.remove_all(str(db), promoted=False)
    assert changelog.file_state(str(db)).promoted  # the refusal changed nothing
    removed = changelog.remove_all(str(db), promoted=True)
    assert removed.promoted and removed.meta is not None
    assert removed.meta.promoted_at is not None
    assert _liteshift_objects(db) == set()
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:  # the fence is gone: the file takes writes as a SQLite primary again
        message = store.create_message(MessageIn(conversation_id="c", role="user", content="x"))
        assert store.get_message(message.id).content == "x"
        store.advance_cursor("w", None, "1")
    finally:
        store.close()


def test_a_write_through_the_store_to_a_promoted_file_is_a_typed_error(db: Path) -> None:
    store = open_store(f"sqlite://{db}", vector_dimension=DIM)
    try:
        kept = store.create_message(MessageIn(conversation_id="c", role="user", content="a"))
        proposal = store.create_proposal(ProposalIn(kind="k", payload={}))
        changelog.install(str(db))
        with changelog.write_transaction(str(db)) as conn:  # promoted under the running store
            changelog.mark_promoted(conn, "postgresql://u:***@h/db")
        expected = f"cannot use database sqlite file {db}: {changelog.PROMOTED_MESSAGE}"
        writes = (
            lambda: store.create_message(MessageIn(conversation_id="c", role="user", content="b")),
            lambda: store.decide_proposal(proposal.id, "accepted"),
            lambda: store.advance_cursor("w", None, "1"),
            lambda: store.append_event(EventIn(type="t", payload={})),
        )
        for write in writes:
            with pytest.raises(changelog.PromotedReadOnly) as raised:
                write()
            assert str(raised.value) == expected
            assert isinstance(raised.value, StoreUnavailable)
        # Inserts merged by group commit fail the same way, each with the typed error.
        with ThreadPoolExecutor(8) as pool:
            futures = [
                pool.submit(
                    store.create_message,
                    MessageIn(conversation_id="c", role="user", content=str(n)),
                )
                for n in range(32)
            ]
        for future in futures:
            assert isinstance(future.exception(), changelog.PromotedReadOnly)
        assert store.get_message(kept.id).content == "a"  # reads go on
    finally:
        store.close()
