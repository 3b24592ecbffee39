"""The kNN index over `embeddings`, derived from it and rebuildable at any time.

The `embeddings` table is the source of truth; an index only answers "which ids are nearest".
Implementations: sqlite-vec `vec0` (SQLite default), sqlite-vss `vss0` (SQLite), and an exact
L2 scan in SQL (Postgres without pgvector). Distances are Euclidean (L2) everywhere.
Index tables on SQLite are named `vector_index_*` and are not part of the migrations.
"""

from __future__ import annotations

import math
from typing import Protocol

import apsw
import sqlite_vec
import sqlite_vss

from liteshift.store.dbapi import Db, pack_vector
from liteshift.store.errors import StoreUnavailable


class VectorIndex(Protocol):
    name: str
    #: True when each connection holds its own in-memory copy of the index (vss0): searches
    #: must then run on the writer connection to see every committed write.
    per_connection: bool

    def ensure(self, db: Db, dimension: int) -> None:
        """Create the index if missing and rebuild it when it disagrees with `embeddings`."""
        ...

    def add(self, db: Db, embedding_id: str, vector: tuple[float, ...]) -> None:
        """Index one embedding (called last in its write, after every check passed)."""
        ...

    def remove(self, db: Db, embedding_id: str) -> None: ...

    def search(self, db: Db, vector: tuple[float, ...], k: int) -> list[tuple[str, float]]:
        """Up to k (embedding id, L2 distance) pairs, nearest first."""
        ...

    def rebuild(self, db: Db) -> int:
        """Drop every entry and re-add all of `embeddings`; returns the number indexed."""
        ...


def load_sqlite_extensions(conn: apsw.Connection, index: str) -> None:
    """Load the extension the chosen SQLite index needs into `conn`."""
    try:
        conn.enable_load_extension(True)
        if index == "vec":
            conn.load_extension(sqlite_vec.loadable_path())
        else:
            conn.load_extension(sqlite_vss.vector_loadable_path())
            conn.load_extension(sqlite_vss.vss_loadable_path())
        conn.enable_load_extension(False)
    except apsw.Error as exc:
        raise StoreUnavailable("sqlite", f"cannot load the {index} extension: {exc}") from exc


def _count_embeddings(db: Db) -> int:
    return int(db.rows("SELECT count(*) FROM embeddings")[0][0])


class SqliteVecIndex:
    """sqlite-vec `vec0`, keyed by the embedding's text id (transactional shadow tables)."""

    name = "vec"
    per_connection = False

    def ensure(self, db: Db, dimension: int) -> None:
        rows = db.rows("SELECT sql FROM sqlite_schema WHERE name = 'vector_index_vec'")
        wanted = f"float[{dimension}]"
        if rows and wanted not in str(rows[0][0]):
            db.execute("DROP TABLE vector_index_vec")
            rows = []
        if not rows:
            db.execute(
                "CREATE VIRTUAL TABLE vector_index_vec USING vec0("
                f"embedding_id text primary key, embedding float[{dimension}])"
            )
        indexed = int(db.rows("SELECT count(*) FROM vector_index_vec")[0][0])
        if indexed != _count_embeddings(db):
            self.rebuild(db)

    def add(self, db: Db, embedding_id: str, vector: tuple[float, ...]) -> None:
        db.execute(
            "INSERT INTO vector_index_vec (embedding_id, embedding) VALUES (?, ?)",
            (embedding_id, pack_vector(vector)),
        )

    def remove(self, db: Db, embedding_id: str) -> None:
        db.execute("DELETE FROM vector_index_vec WHERE embedding_id = ?", (embedding_id,))

    def search(self, db: Db, vector: tuple[float, ...], k: int) -> list[tuple[str, float]]:
        rows = db.rows(
            "SELECT embedding_id, distance FROM vector_index_vec "
            "WHERE embedding MATCH ? AND k = ? ORDER BY distance",
            (pack_vector(vector), k),
        )
        return [(str(r[0]), float(r[1])) for r in rows]

    def rebuild(self, db: Db) -> int:
        db.execute("DELETE FROM vector_index_vec")
        db.execute(
            "INSERT INTO vector_index_vec (embedding_id, embedding) "
            "SELECT id, vector FROM embeddings"
        )
        return _count_embeddings(db)


class SqliteVssIndex:
    """sqlite-vss `vss0` (Faiss, rowid keyed) with a plain mapping table rowid → embedding id.

    vss0 keeps pending rows in memory and ignores ROLLBACK TO SAVEPOINT, so entries are only
    added as the last step of a write that already passed every check, and the engine rebuilds
    the index after any batch that failed to commit. Each connection loads its own Faiss index
    when it first touches the table and never sees later writes of other connections, so the
    SQLite engine runs vss searches on the writer connection. (sqlite-vss 0.1.2 also logs a
    harmless "UNIQUE constraint failed: …_index.rowid" SQLite notice on commits.)
    """

    name = "vss"
    per_connection = True

    def ensure(self, db: Db, dimension: int) -> None:
        rows = db.rows("SELECT sql FROM sqlite_schema WHERE name = 'vector_index_vss'")
        if rows and f"embedding({dimension})" not in str(rows[0][0]):
            db.execute("DROP TABLE vector_index_vss")
            db.execute("DROP TABLE IF EXISTS vector_index_vss_ids")
            rows = []
        if not rows:
            db.execute(f"CREATE VIRTUAL TABLE vector_index_vss USING vss0(embedding({dimension}))")
        db.execute(
            "CREATE TABLE IF NOT EXISTS vector_index_vss_ids ("
            "rowid INTEGER PRIMARY KEY, embedding_id TEXT NOT NULL UNIQUE)"
        )
        indexed = int(db.rows("SELECT count(*) FROM vector_index_vss_ids")[0][0])
        if not rows or indexed != _count_embeddings(db):
            self.rebuild(db)

    def add(self, db: Db, embedding_id: str, vector: tuple[float, ...]) -> None:
        db.execute("INSERT INTO vector_index_vss_ids (embedding_id) VALUES (?)", (embedding_id,))
        rowid = db.rows(
            "SELECT rowid FROM vector_index_vss_ids WHERE embedding_id = ?", (embedding_id,)
        )[0][0]
        db.execute(
            "INSERT INTO vector_index_vss (rowid, embedding) VALUES (?, ?)",
            (rowid, pack_vector(vector)),
        )

    def remove(self, db: Db, embedding_id: str) -> None:
        rows = db.rows(
            "SELECT rowid FROM vector_index_vss_ids WHERE embedding_id = ?", (embedding_id,)
        )
        if rows:
            db.execute("DELETE FROM vector_index_vss_ids WHERE rowid = ?", (rows[0][0],))
            db.execute("DELETE FROM vector_index_vss WHERE rowid = ?", (rows[0][0],))

    def search(self, db: Db, vector: tuple[float, ...], k: int) -> list[tuple[str, float]]:
        # Faiss aborts the whole process on a search with k = 0 (an empty index), and asks for
        # k ≤ the number of vectors.
        size = int(db.rows("SELECT count(*) FROM vector_index_vss_ids")[0][0])
        if size == 0:
            return []
        rows = db.rows(
            "SELECT m.embedding_id, v.distance FROM ("
            "  SELECT rowid, distance FROM vector_index_vss"
            "  WHERE vss_search(embedding, vss_search_params(?, ?))"
            ") AS v JOIN vector_index_vss_ids AS m ON m.rowid = v.rowid ORDER BY v.distance",
            (pack_vector(vector), min(k, size)),
        )
        # Faiss reports squared L2.
        return [(str(r[0]), math.sqrt(max(float(r[1]), 0.0))) for r in rows]

    def rebuild(self, db: Db) -> int:
        for (rowid,) in db.rows("SELECT rowid FROM vector_index_vss_ids"):
            db.execute("DELETE FROM vector_index_vss WHERE rowid = ?", (rowid,))
        db.execute("DELETE FROM vector_index_vss_ids")
        for embedding_id, blob in db.rows("SELECT id, vector FROM embeddings ORDER BY id"):
            db.execute(
                "INSERT INTO vector_index_vss_ids (embedding_id) VALUES (?)", (embedding_id,)
            )
            rowid = db.rows(
                "SELECT rowid FROM vector_index_vss_ids WHERE embedding_id = ?", (embedding_id,)
            )[0][0]
            db.execute(
                "INSERT INTO vector_index_vss (rowid, embedding) VALUES (?, ?)", (rowid, blob)
            )
        return _count_embeddings(db)


class ExactIndex:
    """No index: an exact L2 scan over `embeddings` in SQL (Postgres without pgvector).

    Distances are computed in double precision from the float4 values, like sqlite-vec does in
    single precision; the nearest neighbours agree, the last digits of distances may not.
    """

    name = "exact"
    per_connection = False

    def ensure(self, db: Db, dimension: int) -> None:
        return None

    def add(self, db: Db, embedding_id: str, vector: tuple[float, ...]) -> None:
        return None

    def remove(self, db: Db, embedding_id: str) -> None:
        return None

    def search(self, db: Db, vector: tuple[float, ...], k: int) -> list[tuple[str, float]]:
        rows = db.rows(
            "SELECT e.id, sqrt(("
            "  SELECT sum((a::float8 - b::float8) * (a::float8 - b::float8))"
            "  FROM unnest(e.vector, ?::real[]) AS t(a, b)"
            ")) AS distance FROM embeddings AS e ORDER BY distance, e.id LIMIT ?",
            (db.vec(vector), k),
        )
        return [(str(r[0]), float(r[1])) for r in rows]

    def rebuild(self, db: Db) -> int:
        return _count_embeddings(db)
