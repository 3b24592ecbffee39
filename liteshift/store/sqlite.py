"""The SQLite engine (APSW): one writer thread with group commit, a pool of read connections.

Writes are queued to the single writer thread, which takes up to `batch_max_ops` of them
(waiting at most `batch_max_wait_seconds` after the first for company) and commits them in one
`BEGIN IMMEDIATE … COMMIT` — one fsync for the whole batch. Each write runs inside its own
SAVEPOINT, so one that fails (a duplicate id → Conflict) is rolled back alone. A caller's Future
resolves only after COMMIT returned. SQLITE_BUSY (another process holding the write lock) is
retried inside the engine and never reaches a caller; it is counted for the observer.
Reads run on `readers` threads, each with its own `query_only` connection (WAL lets them read
while the writer writes).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apsw

from liteshift.store.base import BaseStore, Kind
from liteshift.store.connect import sqlite_connect
from liteshift.store.dbapi import Db, SqliteDb
from liteshift.store.errors import MigrationError, StoreUnavailable
from liteshift.store.media import MediaStore
from liteshift.store.models import OpSample
from liteshift.store.vector_index import (
    SqliteVecIndex,
    SqliteVssIndex,
    VectorIndex,
    load_sqlite_extensions,
)

log = logging.getLogger("liteshift.store.sqlite")

#: How long a batch keeps retrying SQLITE_BUSY (another process holds the write lock) before
#: its callers get StoreUnavailable.
BUSY_GIVE_UP_SECONDS = 30.0


@dataclass
class _Write:
    name: str
    task: Callable[[Db], Any]
    future: Future[Any]
    kind: str
    queued: float = field(default_factory=time.monotonic)


_STOP = object()


class SqliteStore(BaseStore):
    """`Store` over one SQLite file (see module docstring)."""

    engine = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        vector_dimension: int = 384,
        vector_index: str = "vec",
        synchronous: str = "FULL",
        busy_timeout_ms: int = 5000,
        readers: int = 4,
        batch_max_ops: int = 256,
        batch_max_wait_seconds: float = 0.002,
        observer: Callable[[OpSample], None] | None = None,
        media: MediaStore | None = None,
    ) -> None:
        super().__init__(vector_dimension=vector_dimension, observer=observer, media=media)
        if vector_index not in ("vec", "vss"):
            raise StoreUnavailable(f"sqlite file {path}", "vector_index must be vec or vss")
        if not 1 <= readers <= 64 or not 1 <= batch_max_ops <= 10000:
            raise StoreUnavailable(f"sqlite file {path}", "readers/batch_max_ops out of range")
        self.path = path
        self._index_kind = vector_index
        self._index: VectorIndex = SqliteVecIndex() if vector_index == "vec" else SqliteVssIndex()
        self._busy_timeout_ms = busy_timeout_ms
        self._batch_max_ops = batch_max_ops
        self._batch_max_wait = max(0.0, batch_max_wait_seconds)
        self._writer_conn = sqlite_connect(
            path, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms
        )
        load_sqlite_extensions(self._writer_conn, vector_index)
        self._db = SqliteDb(self._writer_conn)
        try:
            self._check_schema()
            self._in_transaction(lambda: self._index.ensure(self._db, self.vector_dimension))
        except BaseException:
            self._writer_conn.close()
            raise
        #: Transactions the writer committed (each one fsync with synchronous=FULL).
        self.batches_committed = 0
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._reader_local = threading.local()
        self._reader_conns: list[apsw.Connection] = []
        self._reader_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="liteshift-sqlite-read")
        self._writer = threading.Thread(
            target=self._writer_loop, name="liteshift-sqlite-writer", daemon=True
        )
        self._writer.start()

    # --- setup ------------------------------------------------------------------------------

    def _check_schema(self) -> None:
        rows = self._db.rows("SELECT name FROM sqlite_schema WHERE type = 'table'")
        if "embeddings" not in {r[0] for r in rows}:
            raise MigrationError(
                f"{self.path} has no liteshift schema; run `liteshift migrate up --db URL` "
                "or open the store with migrate=True"
            )

    def _in_transaction(self, work: Callable[[], object]) -> None:
        self._begin_immediate()
        try:
            work()
        except BaseException:
            self._writer_conn.execute("ROLLBACK")
            raise
        self._writer_conn.execute("COMMIT")

    def _begin_immediate(self) -> int:
        busy = 0
        started = time.monotonic()
        while True:
            try:
                self._writer_conn.execute("BEGIN IMMEDIATE")
                return busy
            except apsw.BusyError:
                busy += 1
                if time.monotonic() - started > BUSY_GIVE_UP_SECONDS:
                    raise StoreUnavailable(
                        f"sqlite file {self.path}", "the write lock stayed busy for 30 s"
                    ) from None
                time.sleep(min(0.001 * busy, 0.05))

    # --- dispatch ---------------------------------------------------------------------------

    def _dispatch(self, name: str, kind: Kind, task: Callable[[Db], Any]) -> Future[Any]:
        if kind == "write" or (name == "search_embeddings" and self._index.per_connection):
            future: Future[Any] = Future()
            # Under the close lock: a write is either queued before the stop marker (and run)
            # or refused, never stranded behind it.
            with self._close_lock:
                if self._closed:
                    future.set_exception(
                        StoreUnavailable(f"sqlite file {self.path}", "store closed")
                    )
                    return future
                self._queue.put(_Write(name, task, future, "write" if kind == "write" else "read"))
            return future
        try:
            return self._readers.submit(self._read, name, task, time.monotonic())
        except RuntimeError:
            closed: Future[Any] = Future()
            closed.set_exception(StoreUnavailable(f"sqlite file {self.path}", "store closed"))
            return closed

    # --- reads ------------------------------------------------------------------------------

    def _reader(self) -> apsw.Connection:
        conn: apsw.Connection | None = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = sqlite_connect(
                self.path, create=False, query_only=True, busy_timeout_ms=self._busy_timeout_ms
            )
            load_sqlite_extensions(conn, self._index_kind)
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        return conn

    def _read(self, name: str, task: Callable[[Db], Any], queued: float) -> Any:
        started = time.monotonic()
        busy = 0
        ok = False
        try:
            conn = self._reader()
            while True:
                try:
                    # One read transaction: a multi-statement read sees one snapshot.
                    with conn:
                        result = task(SqliteDb(conn))
                    ok = True
                    return result
                except apsw.BusyError:
                    busy += 1
                    if time.monotonic() - started > BUSY_GIVE_UP_SECONDS:
                        raise StoreUnavailable(
                            f"sqlite file {self.path}", "the database stayed busy for 30 s"
                        ) from None
                    time.sleep(min(0.001 * busy, 0.05))
        finally:
            end = time.monotonic()
            self.observe(
                name, "read", duration=end - queued, wait=started - queued, busy=busy, ok=ok
            )

    # --- the writer -------------------------------------------------------------------------

    def _writer_loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            assert isinstance(first, _Write)
            batch = [first]
            deadline = time.monotonic() + self._batch_max_wait
            while len(batch) < self._batch_max_ops:
                try:
                    remaining = deadline - time.monotonic()
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Write)
                batch.append(item)
            self._run_batch_safely([w for w in batch if w.future.set_running_or_notify_cancel()])
        self._drain_after_stop()

    def _drain_after_stop(self) -> None:
        leftover: list[_Write] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Write) and item.future.set_running_or_notify_cancel():
                leftover.append(item)
        if leftover:
            self._run_batch_safely(leftover)

    def _run_batch_safely(self, batch: list[_Write]) -> None:
        # The writer thread must survive anything: a dead writer would hang every caller.
        try:
            self._run_batch(batch)
        except BaseException as exc:
            log.exception("sqlite writer failed on a batch")
            failure = StoreUnavailable(f"sqlite file {self.path}", f"writer failed: {exc}")
            for write in batch:
                if not write.future.done():
                    write.future.set_exception(failure)
            if isinstance(exc, Exception):
                return
            raise

    def _run_batch(self, batch: list[_Write]) -> None:
        if not batch:
            return
        conn = self._writer_conn
        started = time.monotonic()
        outcomes: list[tuple[bool, Any]] = []
        busy = 0
        try:
            busy = self._begin_immediate()
            for write in batch:
                conn.execute("SAVEPOINT liteshift_op")
                try:
                    outcomes.append((True, write.task(self._db)))
                    conn.execute("RELEASE liteshift_op")
                except Exception as exc:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back (disk full, I/O)
                    conn.execute("ROLLBACK TO liteshift_op")
                    conn.execute("RELEASE liteshift_op")
                    outcomes.append((False, exc))
            self._commit()
            self.batches_committed += 1
        except Exception as exc:
            failure = (
                exc
                if isinstance(exc, StoreUnavailable)
                else StoreUnavailable(f"sqlite file {self.path}", f"write failed: {exc}")
            )
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("sqlite batch of %d writes failed: %s", len(batch), exc)
            if self._index_kind == "vss":
                self._rebuild_after_failure()
            outcomes = [(False, failure)] * len(batch)
        finished = time.monotonic()
        for position, (write, (ok, value)) in enumerate(zip(batch, outcomes, strict=True)):
            if ok:
                write.future.set_result(value)
            else:
                write.future.set_exception(value)
            self.observe(
                write.name,
                write.kind,
                duration=finished - write.queued,
                wait=started - write.queued,
                # Once per batch, so the sum over samples is the number of BUSY retries.
                busy=busy if position == 0 else 0,
                ok=ok,
            )

    def _commit(self) -> None:
        started = time.monotonic()
        while True:
            try:
                self._writer_conn.execute("COMMIT")
                return
            except apsw.BusyError:
                if time.monotonic() - started > BUSY_GIVE_UP_SECONDS:
                    raise
                time.sleep(0.001)

    def _rebuild_after_failure(self) -> None:
        # vss0 keeps rows of a rolled-back transaction; re-derive it from `embeddings`.
        try:
            self._in_transaction(lambda: self._index.rebuild(self._db))
        except Exception:
            log.exception("rebuilding the vss index failed; it is rebuilt at the next open")

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued writes, then close every connection; idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._writer.join()
        self._readers.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        with contextlib.suppress(apsw.Error):
            self._writer_conn.pragma("optimize")
        self._writer_conn.close()
        if self._media is not None:
            self._media.close()

    def ping(self) -> None:
        """Read the schema through a reader connection; raises StoreUnavailable."""
        try:
            self._readers.submit(lambda: self._reader().execute("SELECT 1").fetchall()).result()
        except RuntimeError:
            raise StoreUnavailable(f"sqlite file {self.path}", "store closed") from None
        except apsw.Error as exc:
            raise StoreUnavailable(f"sqlite file {self.path}", str(exc)) from exc

    def _sizes(self) -> tuple[int, int]:
        def size(path: str) -> int:
            try:
                return os.stat(path).st_size
            except FileNotFoundError:
                return 0

        return size(self.path), size(self.path + "-wal")
