"""The derived kNN index: sqlite-vec, sqlite-vss and Postgres' exact search agree."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from liteshift.store import Conflict, Store, open_store
from liteshift.store.models import EmbeddingIn
from liteshift.store.vector_index import load_sqlite_extensions
from tests.store.conftest import DIM


def _dataset() -> tuple[list[EmbeddingIn], list[tuple[float, ...]]]:
    rng = random.Random(20260223)
    rows = [
        EmbeddingIn(
            "message",
            f"m{i}",
            "mini",
            tuple(rng.uniform(-1, 1) for _ in range(DIM)),
            id=f"00000000-0000-4000-8000-{i:012d}",
        )
        for i in range(300)
    ]
    queries = [tuple(rng.uniform(-1, 1) for _ in range(DIM)) for _ in range(20)]
    return rows, queries


def _answers(store: Store, queries: list[tuple[float, ...]]) -> list[list[tuple[str, float]]]:
    return [[(n.embedding.id, n.distance) for n in store.search_embeddings(q, 5)] for q in queries]


def test_same_neighbours_on_vss_vec_and_postgres(tmp_path: Path, postgres_dsn: str) -> None:
    rows, queries = _dataset()
    results: dict[str, list[list[tuple[str, float]]]] = {}
    for label, url, options in (
        ("vec", f"sqlite://{tmp_path}/vec.db", {"vector_index": "vec"}),
        ("vss", f"sqlite://{tmp_path}/vss.db", {"vector_index": "vss"}),
        ("postgres", postgres_dsn, {}),
    ):
        store = open_store(url, migrate=True, vector_dimension=DIM, **options)  # type: ignore[arg-type]
        try:
            # Submitted together: group commit makes this a handful of transactions.
            for future in [store.submit(store.create_embedding, row) for row in rows]:
                future.result(timeout=60)
            results[label] = _answers(store, queries)
        finally:
            store.close()
    ids = {label: [[i for i, _ in hits] for hits in found] for label, found in results.items()}
    assert ids["vec"] == ids["vss"] == ids["postgres"]
    assert all(len(hits) == 5 for hits in ids["vec"])
    for label in ("vss", "postgres"):
        for mine, theirs in zip(results[label], results["vec"], strict=True):
            assert [d for _, d in mine] == pytest.approx([d for _, d in theirs], rel=1e-4)


@pytest.mark.parametrize("index", ["vec", "vss"])
def test_index_is_rebuilt_from_the_table(tmp_path: Path, index: str) -> None:
    """Drop the derived index behind the store's back: the next open rebuilds it."""
    rows, queries = _dataset()
    url = f"sqlite://{tmp_path}/x.db"
    store = open_store(url, migrate=True, vector_dimension=DIM, vector_index=index)  # type: ignore[arg-type]
    for row in rows[:50]:
        store.create_embedding(row)
    before = _answers(store, queries)
    store.delete_embedding(rows[0].id or "")
    store.close()
    assert before[0]

    conn = apsw.Connection(f"{tmp_path}/x.db")
    load_sqlite_extensions(conn, index)
    # The derived index is a virtual table outside the migrations; drop it.
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_schema WHERE name LIKE 'vector_index_%' "
            "AND sql LIKE 'CREATE VIRTUAL%'"
        )
    ]
    assert len(names) == 1
    conn.execute(f"DROP TABLE {names[0]}")
    conn.close()

    store = open_store(url, vector_dimension=DIM, vector_index=index)  # type: ignore[arg-type]
    try:
        after = _answers(store, queries)
        assert store.rebuild_vector_index() == 49
        assert _answers(store, queries) == after
        assert all(rows[0].id not in [i for i, _ in hits] for hits in after)
    finally:
        store.close()


def test_dimension_change_rebuilds_vec_index(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/d.db"
    store = open_store(url, migrate=True, vector_dimension=4)
    store.close()
    store = open_store(url, vector_dimension=DIM)
    try:
        made = store.create_embedding(EmbeddingIn("m", "1", "x", tuple([0.25] * DIM)))
        assert store.search_embeddings(tuple([0.25] * DIM), 1)[0].embedding.id == made.id
    finally:
        store.close()


@pytest.fixture(params=["vec", "vss", "postgres"])
def index_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "postgres":
        store = open_store(
            request.getfixturevalue("postgres_dsn"), migrate=True, vector_dimension=4
        )
    else:
        store = open_store(
            f"sqlite://{tmp_path}/i.db",
            migrate=True,
            vector_dimension=4,
            vector_index=request.param,
        )
    try:
        yield store
    finally:
        store.close()


def test_search_edges(index_store: Store) -> None:
    """Empty index, k above the row count, a refused duplicate leaving the index alone."""
    store = index_store
    assert store.search_embeddings((1.0, 2.0, 3.0, 4.0), 5) == []
    first = store.create_embedding(EmbeddingIn("m", "1", "x", (1.0, 2.0, 3.0, 4.0)))
    second = store.create_embedding(EmbeddingIn("m", "2", "x", (1.0, 2.0, 3.0, 5.0)))
    with pytest.raises(Conflict):
        store.create_embedding(EmbeddingIn("m", "3", "x", (9.0, 9.0, 9.0, 9.0), id=first.id))
    hits = store.search_embeddings((1.0, 2.0, 3.0, 4.0), 1000)
    assert [(n.embedding.id, n.distance) for n in hits] == [(first.id, 0.0), (second.id, 1.0)]
    store.delete_embedding(first.id)
    store.delete_embedding(second.id)
    assert store.search_embeddings((1.0, 2.0, 3.0, 4.0), 5) == []
