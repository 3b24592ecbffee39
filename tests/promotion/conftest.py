"""SQLite stores full of edge values, written through the store's own validated API."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from liteshift.store import open_store
from liteshift.store.models import AgentMessageIn, EmbeddingIn, EventIn, MessageIn, ProposalIn

DIMENSION = 3
EDGE_TEXTS = [
    "",
    "plain",
    "tab\there, newline\nthere, cr\r, backslash \\ and \\N",
    "unit separator \x1f inside",
    "ünïcödé — 漢字 — emoji 🎉 — rtl עברית",
    "control \x01\x02\x7f",
    "x" * 10_000,
]
EDGE_JSON: list[dict[str, object]] = [
    {},
    {"a": 1, "bb": [1, 2.5, -3], "c": None, "d": True, "e": False},
    {"float": 0.1, "tiny": 1e-07, "big": 1e16, "huge": 1.5e300, "negzero": -0.0, "int": 2**62},
    {"nested": {"deeper": {"list": [{"k": "v"}, [], {}]}}, "zz": "", "a": 'é\n\t"q"\\'},
    {"ключ": "значение", "🎉": "party", "\u00e9": 1, "e\u0301": 2},
]
EDGE_TIMES = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
EDGE_VECTORS = [(0.0, -0.0, 1.0), (1e-45, 3.4028234663852886e38, -1.5), (0.1, 0.2, 0.3)]


def fill_store(path: Path, rows: int = 40) -> None:
    """A migrated SQLite store with every table and every edge value, via the domain API."""
    store = open_store(f"sqlite://{path}", migrate=True, vector_dimension=DIMENSION)
    try:
        base = datetime(2026, 1, 1, tzinfo=UTC)
        for i in range(rows):
            text = EDGE_TEXTS[i % len(EDGE_TEXTS)]
            meta = EDGE_JSON[i % len(EDGE_JSON)]
            when = EDGE_TIMES[i % len(EDGE_TIMES)] if i < 8 else base + timedelta(seconds=i)
            store.create_message(
                MessageIn(
                    conversation_id=f"conv-{i % 3}",
                    role="user",
                    content=text,
                    sender=None if i % 2 else "ana",
                    metadata=meta,
                    created_at=when,
                )
            )
            proposal = store.create_proposal(
                ProposalIn(kind="merge", payload=meta, conversation_id=None, created_at=when)
            )
            if i % 3 == 0:
                store.decide_proposal(proposal.id, "accepted", reason=text or None)
            store.append_event(EventIn(type="created", payload=meta, subject_id=proposal.id))
            store.create_agent_message(
                AgentMessageIn(
                    conversation_id="c",
                    agent="planner",
                    content=text,
                    recipient=None,
                    metadata=meta,
                )
            )
            store.create_embedding(
                EmbeddingIn(
                    owner_kind="message",
                    owner_id=str(uuid.uuid4()),
                    model="m",
                    vector=EDGE_VECTORS[i % len(EDGE_VECTORS)],
                )
            )
            store.advance_cursor(f"worker-{i}", None, text or "start")
    finally:
        store.close()


@pytest.fixture(scope="session")
def filled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "app.db"
    fill_store(path)
    return path


@pytest.fixture
def filled_sqlite(filled_template: Path, tmp_path: Path) -> Path:
    """A private copy of the filled store (built once per run: 240 fsynced writes)."""
    path = tmp_path / "app.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(filled_template) + suffix)
        if source.exists():
            shutil.copyfile(source, str(path) + suffix)
    return path


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Callable[[int], Path]:
    def make(rows: int) -> Path:
        path = tmp_path / f"app-{rows}.db"
        fill_store(path, rows)
        return path

    return make
