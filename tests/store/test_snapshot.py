"""The backup's SQL: online copies under writes, checks, counts, versions, exported snapshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import apsw.bestpractice
import psycopg
import pytest
from psycopg import sql

from liteshift.store import snapshot
from liteshift.store.errors import StoreUnavailable


def _make(path: Path, rows: int) -> None:
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("CREATE VIRTUAL TABLE docs USING fts5(body)")
    with conn:
        conn.executemany("INSERT INTO t (v) VALUES (randomblob(?))", [(500,)] * rows)
        conn.execute("INSERT INTO docs VALUES ('hello world')")
    conn.close()


def test_online_copy_never_restarts_under_writes(tmp_path: Path) -> None:
    """A writer commits every millisecond; the stepped copy still finishes in one pass."""
    source = tmp_path / "src.db"
    _make(source, 20_000)
    stop = threading.Event()

    def write() -> None:
        conn = apsw.Connection(str(source))
        conn.set_busy_timeout(5000)
        while not stop.is_set():
            conn.execute("INSERT INTO t (v) VALUES (randomblob(100))")
            time.sleep(0.001)
        conn.close()

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[tuple[int, int]] = []
    try:
        time.sleep(0.1)
        snapshot.online_backup(
            source, tmp_path / "copy.db", progress=lambda d, t: seen.append((d, t))
        )
    finally:
        stop.set()
        thread.join()
    done = [d for d, _ in seen]
    assert done == sorted(done), "progress went backwards: the copy restarted"
    assert seen[-1][0] == seen[-1][1]
    assert len(seen) > 1
    conn = snapshot.open_copy(tmp_path / "copy.db")
    assert snapshot.check_integrity(conn).ok
    assert snapshot.sqlite_row_counts(conn)["t"] >= 20_000
    conn.close()


@pytest.fixture
def best_practice_hooks() -> Iterator[None]:
    """The store applies apsw.bestpractice (WAL on every connection…): copies must not care."""
    saved = list(apsw.connection_hooks)
    hooks = tuple(f for f in apsw.bestpractice.recommended if f.__name__.startswith("connection_"))
    apsw.bestpractice.apply(hooks)
    try:
        yield
    finally:
        apsw.connection_hooks[:] = saved


@pytest.mark.usefixtures("best_practice_hooks")
def test_copy_is_journal_less_even_with_wal_hooks(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make(source, 100)
    snapshot.online_backup(source, tmp_path / "copy.db")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("copy")) == ["copy.db"]
    conn = snapshot.open_copy(tmp_path / "copy.db")
    assert snapshot.check_integrity(conn, full=True).ok
    assert snapshot.sqlite_row_counts(conn)["t"] == 100
    conn.close()


def test_destination_must_be_new(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make(source, 1)
    (tmp_path / "copy.db").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="already exists"):
        snapshot.online_backup(source, tmp_path / "copy.db")


def test_counts_skip_virtual_tables_and_keep_shadow_tables(tmp_path: Path) -> None:
    source = tmp_path / "src.db"
    _make(source, 10)
    conn = snapshot.open_copy(source)
    counts = snapshot.sqlite_row_counts(conn)
    conn.close()
    assert counts["t"] == 10
    assert "docs" not in counts
    assert counts["docs_content"] == 1
    assert not Path(f"{source}-wal").exists(), "an immutable open must not create a WAL"


def test_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    conn = apsw.Connection(str(path))
    assert snapshot.sqlite_schema_version(conn) is None
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT)")
    assert snapshot.sqlite_schema_version(conn) is None
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'a'), (7, 'b'), (3, 'c')")
    assert snapshot.sqlite_schema_version(conn) == 7
    conn.close()


def test_quick_and_full_check_catch_damage(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _make(path, 2000)
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size - 3 * 4096)
        handle.write(b"\xff" * 3 * 4096)
    conn = snapshot.open_copy(path)
    for full, kind in ((False, "quick_check"), (True, "integrity_check")):
        result = snapshot.check_integrity(conn, full=full)
        assert (result.kind, result.ok) == (kind, False)
        assert result.summary != "ok"
    conn.close()


def test_database_in_use_sees_an_idle_open_connection(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    _make(path, 1)
    other = apsw.Connection(str(path))
    other.execute("SELECT count(*) FROM t").get  # noqa: B018 - idle but open, like a sidecar
    assert snapshot.database_in_use(path)
    other.close()
    assert not snapshot.database_in_use(path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    assert not snapshot.database_in_use(junk)


def test_exported_snapshot_is_consistent(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO t SELECT FROM generate_series(1, 10)")
        with snapshot.export_snapshot(postgres_dsn, "test db") as snap:
            conn.execute("INSERT INTO t SELECT FROM generate_series(1, 5)")
            assert snap.row_counts == {"t": 10}
            assert snap.schema_version is None
            with psycopg.connect(postgres_dsn) as other:
                other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                other.execute(
                    sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snap.snapshot_id))
                )
                assert other.execute("SELECT count(*) FROM t").fetchone() == (10,)
    assert snapshot.pg_row_counts(postgres_dsn, "test db") == {"t": 15}
    assert snapshot.pg_user_tables(postgres_dsn, "test db") == ["t"]


def test_unreachable_postgres_is_a_typed_error() -> None:
    with pytest.raises(StoreUnavailable, match="cannot use database db-at-port-1"):
        snapshot.pg_row_counts("postgresql://nobody@127.0.0.1:1/x", "db-at-port-1")
