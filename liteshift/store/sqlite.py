"""The SQLite engine (APSW): one writer thread with group commit, a pool of read connections.

Writes are queued to the single writer thread, which takes up to `batch_max_ops` of them —
every write queued when it comes back from the previous batch: those that arrived while that
batch committed — and commits them in one `BEGIN IMMEDIATE … COMMIT`, one fsync for the whole
batch. With `batch_max_wait_seconds` > 0 (default 0) it also waits that long after the first
for company, if the previous batch had any (a lone writer does not wait) and only while more
keep arriving; over HTTP the wait only cost throughput (docs/benchmarks.md). Each write runs
inside its own SAVEPOINT, so one that fails (a duplicate id → Conflict) is rolled back alone.
A caller's Future resolves only after COMMIT returned. SQLITE_BUSY (another process holding
the write lock) is retried inside the engine and never reaches a caller; it is counted for the
observer.
Reads run on `readers` threads, each with its own `query_only` connection (WAL lets them read
while the writer writes).

A read is first tried *inline*, on the submitting thread, with a `query_only` connection lent
from a small set (`INLINE_CONNECTIONS`): a point read costs tens of microseconds, less than the
hand-off to a pool thread and back (futures, wake-ups, the GIL changing hands). It is bounded by
`inline_read_budget_seconds`: an operation whose long statement (one that ran past
`_PROGRESS_STEPS` SQLite instructions) took longer twice in a row is sent straight to the pool
for `INLINE_BACKOFF_SECONDS`, so a workload of slow reads goes back to the pool. A statement
that used `INLINE_HARD_LIMIT` budgets of CPU time is interrupted by SQLite's progress handler
(SQLite logs the interrupt) and the read is run again from scratch in the pool (reads have no
side effects); that operation then skips the inline attempt for
`INLINE_INTERRUPT_BACKOFF_SECONDS`. A busy database (an inline connection never waits: busy
timeout 0) also falls back to the pool, which retries.

Checkpoints never run inside the writer's COMMIT (SQLite's automatic checkpoint copies the WAL
into a 1 GB file and fsyncs it there, stalling every queued write for a second or more). The
writer connection has `wal_autocheckpoint` off; its WAL hook wakes a checkpointer thread with
its own connection once `checkpoint_pages` new pages are in the WAL (and a timer wakes it every
`CHECKPOINT_INTERVAL_SECONDS`). The checkpointer runs PASSIVE checkpoints, which never wait
and never block anyone, while the writer keeps committing. A PASSIVE checkpoint alone cannot
bound the WAL under a steady load: SQLite restarts the WAL from its beginning only when a write
starts with every frame already copied, and the writer appends more while the checkpoint
fsyncs. So once the WAL holds `RESTART_FACTOR` x `checkpoint_pages` pages and PASSIVE has caught
up to a small remainder, the checkpointer holds the writer between two batches (`_gate`) and
runs a RESTART checkpoint with a `RESTART_BUSY_MS` busy timeout: it copies the remainder and
waits for readers still on older WAL frames. A reader holding an old snapshot for long (an
online backup, a promotion's copy) makes PASSIVE stop at its snapshot, so the gated step is not
even tried; the WAL grows while that snapshot is held and restarts at the first round after
it is released. `journal_size_limit` shrinks the file back at the first commit after a restart.
Durability is unchanged: a checkpoint only moves committed pages from the WAL (already fsynced
at COMMIT with synchronous=FULL) into the main file, and fsyncs that before the WAL is reused.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import apsw
from pydantic_core import from_json

from liteshift.store.base import BaseStore, InsertTask, JsonRow, Kind, Task
from liteshift.store.changelog import PROMOTED_MESSAGE, PromotedReadOnly
from liteshift.store.connect import sqlite_connect
from liteshift.store.dbapi import Db, Row, SqliteDb
from liteshift.store.errors import MigrationError, NotFound, StoreUnavailable
from liteshift.store.media import MediaStore
from liteshift.store.models import OpSample
from liteshift.store.paced_flush import write_back_in_steps
from liteshift.store.settled import failed, settled
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

#: Read connections lent to inline reads (one is enough for one event loop; a caller finding
#: none free uses the pool).
INLINE_CONNECTIONS = 2
#: After an operation overran its inline budget twice in a row, it skips inline this long.
INLINE_BACKOFF_SECONDS = 0.25
#: An inline statement running this many budgets is interrupted (and re-run in the pool)...
INLINE_HARD_LIMIT = 10
#: ...and its operation skips the inline attempt this long.
INLINE_INTERRUPT_BACKOFF_SECONDS = 10.0
#: SQLite virtual-machine steps between two budget checks (one check costs ~0.2 µs).
_PROGRESS_STEPS = 1000

#: The checkpointer runs a PASSIVE checkpoint at least this often (a no-op without new frames).
CHECKPOINT_INTERVAL_SECONDS = 1.0
#: The WAL is restarted (writer held between batches) once it holds this many times
#: `checkpoint_pages` pages...
RESTART_FACTOR = 4
#: ...waiting at most this long for readers still on older WAL frames (then: next round),
#: and only once PASSIVE left at most a quarter of `checkpoint_pages` (at least this many
#: pages) to copy: what the writer waits for is one small checkpoint.
RESTART_BUSY_MS = 20
RESTART_MIN_REMAINDER = 64
#: The WAL file is cut back to this many times `checkpoint_pages` pages after a restart.
WAL_SIZE_LIMIT_FACTOR = 8


@dataclass
class _Write:
    name: str
    task: Callable[[Db], Any]
    future: Future[Any]
    kind: str
    queued: float = field(default_factory=time.monotonic)


_STOP = object()

#: How often the writer looks for more writes while it waits for a batch's company.
_BATCH_POLL_SECONDS = 0.0002

#: The largest multi-row INSERT the writer prepares (8 columns: 512 bound parameters).
_MAX_ROWS_PER_INSERT = 64


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: str, width: int, rows: int) -> str:
    # `table` and `columns` are constants of liteshift.store.base; values are bound parameters.
    one = "(" + ", ".join("?" * width) + ")"
    return (
        f"INSERT INTO {table} ({columns}) VALUES "
        + ", ".join([one] * rows)
        + " ON CONFLICT DO NOTHING"
    )


_DIGIT = "[0-9]"
#: The one timestamp text `format_ts` writes (and `parse_ts` reads without its slow path), as
#: a GLOB pattern.
_CANONICAL_TS = (
    f"{_DIGIT * 4}-{_DIGIT * 2}-{_DIGIT * 2}T{_DIGIT * 2}:{_DIGIT * 2}:{_DIGIT * 2}.{_DIGIT * 6}Z"
)


@functools.lru_cache(maxsize=32)
def point_json_sql(shape: JsonRow) -> str:
    """One row of `shape.table` as its domain object's JSON, built by SQLite's `json_object`.

    Text is quoted as pydantic-core quotes it; a JSON column is spliced in as stored (its
    canonical text); a timestamp is its canonical text, without the fraction when that is
    zero, as pydantic-core writes a datetime. A row with a timestamp in any other text (not
    written by this store) comes back instead as a JSON array of its column values as stored,
    for the caller to map the slow way (still one statement: no second read)."""
    values: list[str] = []
    canonical: list[str] = []
    for name, how in shape.columns:
        if how == "json":
            value = f"json({name})"
        elif how == "ts":
            value = (
                f"CASE WHEN substr({name}, 20) = '.000000Z' "
                f"THEN substr({name}, 1, 19) || 'Z' ELSE {name} END"
            )
            canonical.append(f"({name} IS NULL OR {name} GLOB '{_CANONICAL_TS}')")
        else:
            value = name
        values.append(f"'{name}', {value}")
    document = f"json_object({', '.join(values)})"
    if canonical:
        document = (
            f"CASE WHEN {' AND '.join(canonical)} THEN {document} "
            f"ELSE json_array({shape.select}) END"
        )
    return f"SELECT {document} FROM {shape.table} WHERE id = ?"


class _NeedsSnapshot(BaseException):
    """A read ran a second statement outside a transaction (BaseException: no task's
    `except Exception` can swallow it)."""


class _OneStatementDb(SqliteDb):
    """A `Db` for a read expected to run one statement, in autocommit mode (its own snapshot):
    it refuses a second one, so a multi-statement read is re-run inside one transaction."""

    used = False

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self.used:
            raise _NeedsSnapshot
        self.used = True
        return self.cursor.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        raise _NeedsSnapshot  # reads never write; let the transactional path report it


class _InlineReader:
    """A read connection lent to inline reads; its progress handler enforces the hard limit.

    Budgets are measured in the thread's CPU time, not wall time: on a loaded machine the OS
    can deschedule the thread for milliseconds in the middle of a cheap read, which says
    nothing about the read. The handler only runs every `_PROGRESS_STEPS` virtual-machine
    steps, so a short statement (a point read, a small page) rarely pays for a clock read.
    SQLite counts those steps over a cached statement's whole life, so a short read may see
    one call; only a read that sees two ran that many steps itself (a "long" read).
    """

    __slots__ = ("calls", "conn", "cpu_limit", "cpu_started", "db", "one")

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self.db = SqliteDb(conn)
        self.one = _OneStatementDb(conn)
        #: CPU seconds a read may use after its first progress call before it is interrupted.
        self.cpu_limit = 0.0
        self.cpu_started = 0.0
        #: Progress calls during the current read.
        self.calls = 0
        # True interrupts the running statement (apsw.InterruptError).
        conn.set_progress_handler(self._over_limit, _PROGRESS_STEPS)

    @property
    def long(self) -> bool:
        return self.calls >= 2

    def _over_limit(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            self.cpu_started = time.thread_time()
            return False
        return time.thread_time() - self.cpu_started > self.cpu_limit

    def run(self, task: Callable[[Db], Any], snapshot: bool) -> Any:
        self.calls = 0
        if not snapshot:
            # One statement needs no transaction: it is its own snapshot (and BEGIN/COMMIT
            # would cost a third of a point read).
            self.one.used = False
            return task(self.one)
        with self.conn:
            return task(self.db)


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
        batch_max_wait_seconds: float = 0.0,
        observer: Callable[[OpSample], None] | None = None,
        media: MediaStore | None = None,
        inline_read_budget_seconds: float = 0.001,
        checkpoint_pages: int = 1000,
    ) -> None:
        super().__init__(vector_dimension=vector_dimension, observer=observer, media=media)
        if vector_index not in ("vec", "vss"):
            raise StoreUnavailable(f"sqlite file {path}", "vector_index must be vec or vss")
        if not 1 <= readers <= 64 or not 1 <= batch_max_ops <= 10000:
            raise StoreUnavailable(f"sqlite file {path}", "readers/batch_max_ops out of range")
        if checkpoint_pages < 0:
            raise StoreUnavailable(f"sqlite file {path}", "checkpoint_pages must be >= 0")
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
        #: 0: SQLite's automatic checkpoint inside the writer's COMMIT (no checkpointer).
        self._checkpoint_pages = checkpoint_pages
        self._checkpoint_conn: apsw.Connection | None = None
        try:
            self._check_schema()
            self._in_transaction(lambda: self._index.ensure(self._db, self.vector_dimension))
            if checkpoint_pages:
                self._checkpoint_conn = self._open_checkpointer(synchronous)
        except BaseException:
            self._writer_conn.close()
            raise
        #: Transactions the writer committed (each one fsync with synchronous=FULL).
        self.batches_committed = 0
        #: SQLITE_BUSY retries of a batch's second BEGIN (a group of inserts undone).
        self._busy_in_batch = 0
        #: Writes in the last batch taken (2 at start: assume company until shown otherwise).
        self._last_batch_size = 2
        self._queue: queue.SimpleQueue[_Write | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._reader_local = threading.local()
        self._reader_conns: list[apsw.Connection] = []
        self._reader_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="liteshift-sqlite-read")
        #: 0 turns inline reads off (every read goes through the pool).
        self._inline_budget = max(0.0, inline_read_budget_seconds)
        self._inline_free: list[_InlineReader] = []
        self._inline_opened = 0
        self._inline_lock = threading.Lock()
        #: Per operation: when it may be tried inline again, and overruns in a row.
        self._inline_backoff: dict[str, float] = {}
        self._inline_strikes: dict[str, int] = {}
        #: Reads seen running more than one statement: inline, they run in one transaction.
        self._snapshot_reads: set[str] = set()
        #: The writer holds it while it runs a batch; the checkpointer to restart the WAL.
        self._gate = threading.Lock()
        #: WAL frames already seen by the checkpointer (the hook wakes it N pages later).
        self._checkpoint_base = 0
        self._checkpoint_wake = threading.Event()
        self._checkpoint_stop = False
        #: Checkpoint rounds run, and WAL restarts the checkpointer forced (for tests/bench).
        self.checkpoints = 0
        self.wal_restarts = 0
        self._writer = threading.Thread(
            target=self._writer_loop, name="liteshift-sqlite-writer", daemon=True
        )
        self._checkpointer: threading.Thread | None = None
        if self._checkpoint_conn is not None:
            self._writer_conn.set_wal_hook(self._wal_hook)
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="liteshift-sqlite-checkpoint", daemon=True
            )
            self._checkpointer.start()
        self._writer.start()

    # --- setup ------------------------------------------------------------------------------

    def _check_schema(self) -> None:
        rows = self._db.rows("SELECT name FROM sqlite_schema WHERE type = 'table'")
        if "embeddings" not in {r[0] for r in rows}:
            raise MigrationError(
                f"{self.path} has no liteshift schema; run `liteshift migrate up --db URL` "
                "or open the store with migrate=True"
            )

    def _open_checkpointer(self, synchronous: str) -> apsw.Connection:
        """Turn the writer's automatic checkpoint off; open the checkpointer's connection."""
        self._writer_conn.wal_autocheckpoint(0)
        page_size = int(self._writer_conn.pragma("page_size"))
        limit = WAL_SIZE_LIMIT_FACTOR * self._checkpoint_pages * page_size
        self._writer_conn.pragma("journal_size_limit", limit)
        # query_only: it checkpoints and nothing else. Its checkpoint fsyncs the main file
        # with the same `synchronous` as the writer.
        conn = sqlite_connect(self.path, create=False, query_only=True, synchronous=synchronous)
        # Only the gated RESTART waits (for readers); PASSIVE never calls the busy handler.
        conn.set_busy_timeout(RESTART_BUSY_MS)
        return conn

    def _settle_main_file(self) -> None:
        """Before a checkpoint fsyncs the main file, write its dirty pages out in steps (a file
        just written wholesale would otherwise be flushed in one burst that the writer's WAL
        fsyncs queue behind); see `write_back_in_steps`."""
        write_back_in_steps(self.path, stop=lambda: self._checkpoint_stop)

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
        if self._inline_budget:
            done = self._read_inline(name, task)
            if done is not None:
                return done
        try:
            return self._readers.submit(self._read, name, task, time.monotonic())
        except RuntimeError:
            return failed(StoreUnavailable(f"sqlite file {self.path}", "store closed"))

    # --- reads ------------------------------------------------------------------------------

    def _point_json(self, shape: JsonRow, key: str) -> Task[bytes]:
        """SQLite builds the document (`point_json_sql`): no row tuple, no domain object, no
        serializer: ~7 µs less per point read through the sidecar (in-process, ~53 → ~46 µs)."""
        sql = point_json_sql(shape)

        def task(db: Db) -> bytes:
            rows = db.rows(sql, (key,))
            if not rows:
                raise NotFound(shape.kind, key)
            document: str = rows[0][0]
            if document[0] == "[":  # a timestamp in another text: the stored values
                return shape.document(db, tuple(from_json(document)))
            return document.encode()

        return task

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

    def _open_inline(self) -> _InlineReader | None:
        """A new inline reader while fewer than INLINE_CONNECTIONS are open (else None)."""
        with self._inline_lock:
            if self._closed or self._inline_opened >= INLINE_CONNECTIONS:
                return None
            self._inline_opened += 1
        try:
            conn = sqlite_connect(self.path, create=False, query_only=True, busy_timeout_ms=0)
            load_sqlite_extensions(conn, self._index_kind)
        except Exception:
            log.exception("opening an inline read connection failed; reads use the pool")
            return None  # the count stays up: no retry on every read
        reader = _InlineReader(conn)
        reader.cpu_limit = self._inline_budget * INLINE_HARD_LIMIT
        return reader

    def _give_back(self, reader: _InlineReader) -> None:
        with self._inline_lock:
            if not self._closed:
                self._inline_free.append(reader)
                return
        reader.conn.close()  # close() already ran: nobody else will close it

    def _read_inline(self, name: str, task: Callable[[Db], Any]) -> Future[Any] | None:
        """Run a read on the caller's thread within the budget; None: use the pool instead.

        This runs for every point read the sidecar serves, so it is kept flat: no clock read
        unless an operation is backing off, the reader's CPU limit set once when it is opened,
        the outcome known without asking the future."""
        backoff = self._inline_backoff
        if backoff and backoff.get(name, 0.0) > time.perf_counter():
            return None
        try:
            reader = self._inline_free.pop()
        except IndexError:
            opened = self._open_inline()
            if opened is None:
                return None
            reader = opened
        started = time.perf_counter()
        try:
            try:
                try:
                    future = settled(reader.run(task, name in self._snapshot_reads))
                except _NeedsSnapshot:
                    self._snapshot_reads.add(name)
                    future = settled(reader.run(task, True))
                ok = True
            except (apsw.InterruptError, apsw.BusyError) as exc:
                # Far over budget (or the file is locked): the pool runs it again from scratch.
                if isinstance(exc, apsw.InterruptError):
                    backoff[name] = time.perf_counter() + INLINE_INTERRUPT_BACKOFF_SECONDS
                return None
            except Exception as exc:
                future = failed(exc)
                ok = False
        finally:
            self._give_back(reader)
        elapsed = time.perf_counter() - started
        if elapsed > self._inline_budget and reader.long:
            # Finished, but slowly (e.g. a big page mapped to objects). A short statement
            # (no progress call) that took long was descheduled, not expensive: no strike.
            self._overran(name)
        elif self._inline_strikes and name in self._inline_strikes:
            del self._inline_strikes[name]
        self.observe(name, "read", duration=elapsed, wait=0.0, busy=0, ok=ok)
        return future

    def _overran(self, name: str) -> None:
        # Twice in a row, not once: on a busy machine the OS can deschedule the thread in the
        # middle of a cheap read; one such stall should not send the operation to the pool.
        strikes = self._inline_strikes.get(name, 0) + 1
        self._inline_strikes[name] = strikes
        if strikes >= 2:
            self._inline_backoff[name] = time.perf_counter() + INLINE_BACKOFF_SECONDS

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
            # Wait for company only when the last batch had some (a lone writer — one client,
            # a CLI — gets one fsync of latency, not one plus the wait), and only while writes
            # keep coming: a poll interval that brings none ends the wait. Writes that arrive
            # while a batch commits form the next batch anyway; waiting longer only adds
            # latency, which closed-loop clients pay in throughput (measured over HTTP at 64
            # clients: a fixed 2 ms wait cost ~40% of the writes/s).
            wait = self._batch_max_wait if self._last_batch_size > 1 else 0.0
            deadline = time.monotonic() + wait
            quiet = False
            while len(batch) < self._batch_max_ops:
                # Polled, not `get(timeout=…)`: on CPython 3.11 a timed SimpleQueue.get that
                # wakes on a stale signal after its deadline passed waits with a negative
                # timeout, i.e. forever (seen here: a lone writer's batch never committed).
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or quiet:
                        break
                    quiet = True
                    time.sleep(min(remaining, _BATCH_POLL_SECONDS))
                    continue
                quiet = False
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Write)
                batch.append(item)
            self._last_batch_size = len(batch)
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
            with self._gate:
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
            self._busy_in_batch = 0
            busy = self._begin_immediate()
            at = 0
            while at < len(batch):
                group = self._insert_group(batch, at)
                if len(group) > 1:
                    outcomes.extend(self._run_inserts(group, first_in_transaction=at == 0))
                else:
                    outcomes.append(self._run_one(batch[at].task))
                at += max(1, len(group))
            self._commit()
            busy += self._busy_in_batch
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

    # Each SQLite call releases the GIL, and getting it back from a busy event loop can take a
    # whole switch interval: the fewer statements per write, the faster the writer. Hence no
    # SAVEPOINT around a plain insert, and one multi-row INSERT per run of inserts.

    @staticmethod
    def _insert_group(batch: list[_Write], at: int) -> list[InsertTask]:
        """The run of plain inserts into one table starting at `batch[at]` (maybe empty)."""
        first = batch[at].task
        if not isinstance(first, InsertTask):
            return []
        group = [first]
        for write in batch[at + 1 :]:
            task = write.task
            if not isinstance(task, InsertTask) or task.table != first.table:
                break
            group.append(task)
        return group

    def _run_one(self, task: Callable[[Db], Any]) -> tuple[bool, Any]:
        conn = self._writer_conn
        # A plain insert is one statement: SQLite undoes a failed statement by itself, and a
        # duplicate id changes nothing (ON CONFLICT DO NOTHING), so it needs no SAVEPOINT.
        plain = isinstance(task, InsertTask)
        if not plain:
            conn.execute("SAVEPOINT liteshift_op")
        try:
            result = task(self._db)
        except Exception as exc:
            if not conn.in_transaction:
                raise  # SQLite rolled the whole transaction back (disk full, I/O)
            if not plain:
                conn.execute("ROLLBACK TO liteshift_op")
                conn.execute("RELEASE liteshift_op")
            if isinstance(exc, apsw.ConstraintError) and PROMOTED_MESSAGE in str(exc):
                # The fence a promotion leaves on the file (liteshift.store.changelog): a 503
                # with its own code, not an unexplained constraint failure.
                return (False, PromotedReadOnly(f"sqlite file {self.path}"))
            return (False, exc)
        if not plain:
            conn.execute("RELEASE liteshift_op")
        return (True, result)

    def _run_inserts(
        self, group: list[InsertTask], *, first_in_transaction: bool
    ) -> list[tuple[bool, Any]]:
        """Insert the group's rows with as few statements as possible (chunks of 64, 32, …, 1
        rows, so few distinct statements are prepared and cached); if any row is refused (a
        duplicate id, a constraint), undo the group and run its inserts one by one, so each
        gets its own outcome. A group that opens the transaction needs no SAVEPOINT: undoing
        it is rolling the transaction back and beginning again."""
        conn = self._writer_conn
        first = group[0]
        if not first_in_transaction:
            conn.execute("SAVEPOINT liteshift_group")
        done = 0
        try:
            while done < len(group):
                size = min(_MAX_ROWS_PER_INSERT, 1 << ((len(group) - done).bit_length() - 1))
                params: list[Any] = []
                for task in group[done : done + size]:
                    params.extend(task.values(self._db))
                conn.execute(_insert_sql(first.table, first.columns, len(first.row), size), params)
                if conn.changes() != size:
                    break
                done += size
        except apsw.ConstraintError:
            pass  # NOT NULL, CHECK…: the one-by-one pass tells which insert it was
        except Exception:
            if not conn.in_transaction:
                raise
        if done == len(group):
            if not first_in_transaction:
                conn.execute("RELEASE liteshift_group")
            return [(True, task.result) for task in group]
        if first_in_transaction:
            conn.execute("ROLLBACK")
            self._busy_in_batch += self._begin_immediate()
        else:
            conn.execute("ROLLBACK TO liteshift_group")
            conn.execute("RELEASE liteshift_group")
        return [self._run_one(task) for task in group]

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

    # --- the checkpointer -------------------------------------------------------------------

    def _wal_hook(self, _conn: apsw.Connection, _name: str, pages: int) -> int:
        # On the writer thread after each COMMIT: cheap, no SQLite calls.
        base = self._checkpoint_base
        if pages < base:  # the WAL was restarted
            self._checkpoint_base = base = 0
        if pages - base >= self._checkpoint_pages:
            self._checkpoint_wake.set()
        return apsw.SQLITE_OK

    def _checkpoint_loop(self) -> None:
        while True:
            self._checkpoint_wake.wait(CHECKPOINT_INTERVAL_SECONDS)
            self._checkpoint_wake.clear()
            if self._checkpoint_stop:
                return
            try:
                self._checkpoint_round()
            except apsw.BusyError:
                pass  # another connection (another store on the file) is checkpointing
            except apsw.Error as exc:
                log.warning("sqlite checkpoint failed (retried later): %s", exc)
            except BaseException:
                log.exception("sqlite checkpointer failed; the WAL is checkpointed at close")
                return

    def _checkpoint_round(self) -> None:
        """PASSIVE until caught up (or held back by a reader), then maybe a gated RESTART."""
        conn = self._checkpoint_conn
        assert conn is not None
        pages = self._checkpoint_pages
        passive = apsw.SQLITE_CHECKPOINT_PASSIVE
        self._settle_main_file()
        in_wal, copied = conn.wal_checkpoint(mode=passive)
        # The writer appended while that checkpoint fsynced: catch up a few times, as long as
        # it makes progress (no progress: a reader's snapshot holds it back).
        # What the gated step may still have to copy while the writer waits (~1 MB at most).
        remainder = max(pages // 4, RESTART_MIN_REMAINDER)
        for _ in range(3):
            if in_wal - copied <= remainder:
                break
            before = copied
            in_wal, copied = conn.wal_checkpoint(mode=passive)
            if copied <= before:
                break
        self.checkpoints += 1
        self._checkpoint_base = max(in_wal, 0)
        if in_wal < RESTART_FACTOR * pages or in_wal - copied > remainder:
            return
        # Held between two batches, the writer appends nothing: the RESTART copies the small
        # remainder, waits up to RESTART_BUSY_MS for readers on older frames, and the next
        # write starts the WAL from its beginning.
        with self._gate:
            try:
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_RESTART)
            except apsw.BusyError:
                return  # a reader is still on older frames: next round
        self.wal_restarts += 1
        self._checkpoint_base = 0

    def _stop_checkpointer(self) -> None:
        """Stop the thread, then checkpoint everything and truncate the WAL if nobody reads."""
        if self._checkpointer is None or self._checkpoint_conn is None:
            return
        self._checkpoint_stop = True
        self._checkpoint_wake.set()
        self._checkpointer.join()
        try:
            self._checkpoint_conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
        except apsw.Error as exc:  # another process reads an older snapshot: it is still safe
            log.info("final sqlite checkpoint incomplete: %s", exc)
        self._checkpoint_conn.close()

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
        with self._inline_lock:
            inline, self._inline_free = self._inline_free, []
        for reader in inline:
            reader.conn.close()
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        with contextlib.suppress(apsw.Error):
            self._writer_conn.pragma("optimize")
        self._stop_checkpointer()
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
