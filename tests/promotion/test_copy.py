"""Copy + verification round trip: every column type and edge value, SQLite → real Postgres."""

from __future__ import annotations

from pathlib import Path

import apsw
import psycopg
import pytest

from liteshift.local.postgres import start_postgres
from liteshift.promotion.copy import copy_data
from liteshift.promotion.errors import TargetNotEmpty
from liteshift.promotion.loose import scan
from liteshift.promotion.readiness import check_readiness
from liteshift.promotion.verify import verify
from liteshift.store import Store, open_store
from liteshift.store.errors import StoreUnavailable
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot
from tests.promotion.conftest import DIMENSION


def _everything(store: Store) -> dict[str, list[object]]:
    """Every row of every table through the domain API (engine-independent objects)."""

    def walk(list_page: object, **kw: object) -> list[object]:
        items: list[object] = []
        cursor = None
        while True:
            page = list_page(limit=1000, cursor=cursor, **kw)  # type: ignore[operator]
            items.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                return items

    return {
        "messages": walk(store.list_messages),
        "proposals": walk(store.list_proposals),
        "events": walk(store.list_events),
        "agent_messages": walk(store.list_agent_messages),
        "embeddings": walk(store.list_embeddings),
        "etl_cursors": walk(store.list_cursors),
    }


def test_round_trip_keeps_every_value_and_checksums_match(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    assert check_readiness(postgres_dsn, sqlite_version=2).ok
    progress: list[tuple[str, int, int]] = []
    with SqliteSnapshot(str(filled_sqlite)) as snapshot:
        scanned = scan(snapshot)
        assert scanned.report.ok, scanned.report.values[:5]
        result = copy_data(
            snapshot, postgres_dsn, batch_rows=7, progress=lambda *a: progress.append(a)
        )
    assert result.rows == {spec.name: 40 for spec in DOMAIN_TABLES}
    # Batches of 7: progress reports every batch, ending at the total.
    messages = [p for p in progress if p[0] == "messages"]
    assert messages[0] == ("messages", 0, 40) and messages[-1] == ("messages", 40, 40)
    assert len(messages) >= 40 // 7

    report = verify(postgres_dsn, scanned.checksums)
    assert report.ok, [t.describe() for t in report.tables]
    assert {t.table: t.target.rows for t in report.tables} == result.rows

    sqlite = open_store(f"sqlite://{filled_sqlite}", vector_dimension=DIMENSION)
    postgres = open_store(postgres_dsn, vector_dimension=DIMENSION)
    try:
        assert _everything(postgres) == _everything(sqlite)
    finally:
        sqlite.close()
        postgres.close()
    with psycopg.connect(postgres_dsn) as conn:
        # Keys and indexes were rebuilt after the load.
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'messages'"
        ).fetchone()
        assert indexes == (3,)
        types = conn.execute(
            "SELECT pg_typeof(metadata)::text, pg_typeof(created_at)::text FROM messages LIMIT 1"
        ).fetchone()
        assert types == ("jsonb", "timestamp with time zone")


def test_copy_refuses_a_target_that_already_has_rows(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    check_readiness(postgres_dsn)
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("INSERT INTO etl_cursors VALUES ('existing', 'p', now())")
    with (
        SqliteSnapshot(str(filled_sqlite)) as snapshot,
        pytest.raises(TargetNotEmpty, match="etl_cursors=1"),
    ):
        copy_data(snapshot, postgres_dsn)


def test_a_failed_copy_leaves_the_target_untouched(filled_sqlite: Path, postgres_dsn: str) -> None:
    check_readiness(postgres_dsn)
    with psycopg.connect(postgres_dsn) as conn:
        # The last table cannot take the data: everything before it must roll back too.
        conn.execute("ALTER TABLE etl_cursors ADD CONSTRAINT short CHECK (length(name) < 3)")
    with (
        SqliteSnapshot(str(filled_sqlite)) as snapshot,
        pytest.raises(StoreUnavailable, match="short"),
    ):
        copy_data(snapshot, postgres_dsn)
    with psycopg.connect(postgres_dsn) as conn:
        for spec in DOMAIN_TABLES:
            assert conn.execute(f"SELECT count(*) FROM {spec.name}").fetchone() == (0,)
        indexes = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'messages'"
        ).fetchone()
        assert indexes == (3,)


def test_the_snapshot_ignores_writes_that_happen_during_the_copy(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    check_readiness(postgres_dsn)
    writer = open_store(f"sqlite://{filled_sqlite}", vector_dimension=DIMENSION)
    try:
        with SqliteSnapshot(str(filled_sqlite)) as snapshot:
            scanned = scan(snapshot)
            writer.advance_cursor("late-writer", None, "x")
            result = copy_data(snapshot, postgres_dsn)
    finally:
        writer.close()
    assert result.rows["etl_cursors"] == 40
    assert verify(postgres_dsn, scanned.checksums).ok


def test_timestamps_with_an_offset_are_converted_to_utc(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    conn = apsw.Connection(str(filled_sqlite))
    conn.execute("UPDATE etl_cursors SET updated_at = '2026-01-01T10:00:00+02:00' WHERE rowid = 3")
    name = conn.execute("SELECT name FROM etl_cursors WHERE rowid = 3").fetchall()[0][0]
    conn.close()
    check_readiness(postgres_dsn)
    with SqliteSnapshot(str(filled_sqlite)) as snapshot:
        assert not snapshot.timestamps_canonical(DOMAIN_TABLES[-1])
        assert snapshot.timestamps_canonical(DOMAIN_TABLES[0])
        scanned = scan(snapshot)
        assert scanned.report.ok
        # The scan tells the copy which tables need no conversion pass: not this one.
        assert "etl_cursors" not in scanned.canonical_tables
        assert "messages" in scanned.canonical_tables
        copy_data(snapshot, postgres_dsn, canonical_tables=scanned.canonical_tables)
    assert verify(postgres_dsn, scanned.checksums).ok
    with psycopg.connect(postgres_dsn) as pg:
        row = pg.execute(
            "SELECT to_char(updated_at AT TIME ZONE 'UTC', 'HH24:MI') FROM etl_cursors "
            "WHERE name = %s",
            (name,),
        ).fetchone()
    assert row == ("08:00",)


def test_postgres_stopping_during_the_copy_fails_cleanly_and_leaves_nothing_behind(
    filled_sqlite: Path,
) -> None:
    server = start_postgres()
    try:
        dsn = server.create_database("stop_during_copy")
        check_readiness(dsn)
        stopped: list[str] = []

        def stop_once(table: str, done: int, total: int) -> None:
            if table == "events" and not stopped:
                stopped.append(table)
                server.pause()

        with (
            SqliteSnapshot(str(filled_sqlite)) as snapshot,
            pytest.raises(StoreUnavailable, match="postgres") as info,
        ):
            copy_data(snapshot, dsn, batch_rows=5, progress=stop_once)
        assert stopped == ["events"]
        assert "\n" not in str(info.value)
        server.resume()
        with psycopg.connect(dsn) as pg:
            for spec in DOMAIN_TABLES:
                assert pg.execute(f"SELECT count(*) FROM {spec.name}").fetchone() == (0,)
            indexes = pg.execute(
                "SELECT count(*) FROM pg_indexes WHERE tablename = 'messages'"
            ).fetchone()
            assert indexes == (3,)
        # The SQLite side is untouched: a retry succeeds.
        with SqliteSnapshot(str(filled_sqlite)) as snapshot:
            scanned = scan(snapshot)
            copy_data(snapshot, dsn)
        assert verify(dsn, scanned.checksums).ok
    finally:
        server.stop()


EXTREME_TIMESTAMPS = [
    "0001-01-01T00:00:00.000000Z",
    "1969-12-31T23:59:59.999999Z",
    "1999-12-31T23:59:59.999999Z",
    "2000-01-01T00:00:00.000001Z",
    "9999-12-31T23:59:59.999999Z",
]


def test_binary_copy_keeps_extreme_timestamps_and_any_json_text(
    filled_sqlite: Path, postgres_dsn: str
) -> None:
    """Clean tables go through binary COPY with values SQLite computes (int8 microseconds,
    jsonb's version byte): every instant and JSON value arrives as the text form gives it."""
    conn = apsw.Connection(str(filled_sqlite))
    for rowid, ts in enumerate(EXTREME_TIMESTAMPS, start=1):
        conn.execute("UPDATE messages SET created_at = ? WHERE rowid = ?", (ts, rowid))
    conn.execute(
        "UPDATE messages SET metadata = ? WHERE rowid = 1",
        ('{"é\\"\\\\\\n":[1.50,-0,1e2,{"":null}],"a\\tb":"✓ \\u00e9"}',),
    )
    ids = [
        row[0] for row in conn.execute("SELECT id FROM messages WHERE rowid <= 5 ORDER BY rowid")
    ]
    conn.close()
    check_readiness(postgres_dsn)
    with SqliteSnapshot(str(filled_sqlite)) as snapshot:
        scanned = scan(snapshot)
        assert scanned.report.ok and "messages" in scanned.canonical_tables
        copy_data(snapshot, postgres_dsn, canonical_tables=scanned.canonical_tables)
    assert verify(postgres_dsn, scanned.checksums).ok
    with psycopg.connect(postgres_dsn) as pg:
        got: dict[str, str] = dict(
            pg.execute(
                "SELECT id, to_char(created_at AT TIME ZONE 'UTC', "
                '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') FROM messages WHERE id = ANY(%s)',
                (ids,),
            ).fetchall()
        )
        metadata = pg.execute(
            "SELECT metadata::text FROM messages WHERE id = %s", (ids[0],)
        ).fetchone()
    assert [got[i] for i in ids] == EXTREME_TIMESTAMPS
    assert metadata == ('{"a\\tb": "✓ é", "é\\"\\\\\\n": [1.50, 0, 100, {"": null}]}',)
