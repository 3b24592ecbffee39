"""Real SQLite files shaped like a liteshift store, for the backup tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import apsw.bestpractice
import pytest

SCHEMA = """
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
    checksum TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
INSERT INTO schema_migrations (version, name, checksum) VALUES (1, 'core', 'x'), (2, 'more', 'y');
CREATE TABLE messages (id TEXT PRIMARY KEY, body TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX messages_created ON messages (created_at);
CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE "odd ""q"" name" (x INTEGER);
"""


def make_store_file(path: Path, messages: int = 500, events: int = 300) -> dict[str, int]:
    """Create a WAL-mode SQLite file with a few tables; return its row counts."""
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(SCHEMA)
    with conn:
        conn.executemany(
            "INSERT INTO messages VALUES (?, ?, ?)",
            [
                (f"m{i:08d}", "hello " * 20, f"2026-01-01T00:{i % 60:02d}:00Z")
                for i in range(messages)
            ],
        )
        conn.executemany(
            "INSERT INTO events (kind, payload) VALUES (?, ?)",
            [("created", f'{{"n": {i}}}') for i in range(events)],
        )
        conn.execute('INSERT INTO "odd ""q"" name" VALUES (1), (2)')
    conn.close()
    return {"schema_migrations": 2, "messages": messages, "events": events, 'odd "q" name': 2}


@pytest.fixture(autouse=True, params=["plain", "bestpractice"])
def connection_hooks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run every backup test twice: as the CLI does (plain APSW connections) and as inside the
    sidecar, whose store applies `apsw.bestpractice` hooks (WAL, busy timeout, optimize…) to
    every connection in the process."""
    saved = list(apsw.connection_hooks)
    if request.param == "bestpractice":
        apsw.bestpractice.apply(
            tuple(f for f in apsw.bestpractice.recommended if f.__name__.startswith("connection_"))
        )
    try:
        yield
    finally:
        apsw.connection_hooks[:] = saved


@pytest.fixture
def store_file(tmp_path: Path) -> tuple[Path, dict[str, int]]:
    path = tmp_path / "live" / "liteshift.db"
    path.parent.mkdir()
    return path, make_store_file(path)


def flip_byte(path: Path, offset: int) -> None:
    """Damage a file the way a bad disk does: one byte changed in place."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
