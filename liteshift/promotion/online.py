"""Online promotion: copy SQLite into Postgres while the sidecar keeps writing, then cut over.

`OnlinePromotion.prepare()` runs while writes continue:

1. readiness (migrates the target, like the offline path);
2. change capture installed in the SQLite file (`liteshift.store.changelog`: triggers append
   every written key to a changelog, in the writing transaction);
3. ONE read snapshot and its changelog position S0, read in the same transaction; the
   loose-data scan and the copy both read that snapshot (the target is emptied first, so a
   re-run after a crash starts again cleanly);
4. catch-up passes: each opens a new snapshot at position S', reads the distinct keys changed
   in (S, S'], re-reads those rows from the snapshot (checked like the scan checks: a loose
   value refuses), makes Postgres equal for those keys (absent = deleted), reads the rows
   back from Postgres and compares each row's hash with SQLite's, and commits; S becomes S'.
   Passes stop when one replays at most `small_delta` keys (or after `max_passes`);
5. full verification: a snapshot at S, Postgres caught up to exactly S, row counts and
   checksums of every table compared (`verify`); then passes again until the delta is small,
   since the verification takes time proportional to the database while writes go on.

The applied position S and the row counts at S are kept in the object. `finish()` is the
write pause: it takes SQLite's write lock (nothing can commit behind its back), replays (S,
end] with the same row-by-row check, commits Postgres, and writes the promoted marker plus
write-refusing triggers in the same SQLite transaction. Its work is proportional to the last
delta, never to the database. `abort()` removes the capture and empties the target.

Postgres is only written by this object; nobody else writes the target before cutover, which
is why "Postgres equals SQLite at S" holds from one pass to the next without re-reading it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import apsw
import psycopg

from liteshift.promotion.errors import (
    AlreadyPromoted,
    PromotionAborted,
    PromotionNotPrepared,
    TargetNotEmpty,
    VerificationFailed,
)
from liteshift.promotion.loose import LooseDataReport, RowChecker, scan
from liteshift.promotion.readiness import ReadinessReport, check_readiness
from liteshift.promotion.verify import VerificationReport, verify
from liteshift.store import changelog
from liteshift.store.checksum import SEPARATOR, postgres_row_hashes, row_hash
from liteshift.store.connect import pg_connect
from liteshift.store.errors import StoreUnavailable
from liteshift.store.transfer import (
    BATCH_ROWS,
    DOMAIN_TABLES,
    SqliteSnapshot,
    TableSpec,
    copy_tables,
    replay_rows,
    target_counts,
    truncate_tables,
)
from liteshift.store.urls import redact

log = logging.getLogger("liteshift.promotion.online")

#: A catch-up pass replaying at most this many keys ends the catch-up: the final delta is
#: then about one pass worth of writes (DESIGN: ≤ 1000 keys, well inside a 1 s pause).
SMALL_DELTA_KEYS = 1000
MAX_PASSES = 20
#: Keys replayed per step of a pass: bounds the rows in memory (~5 MB of 1 KB rows).
REPLAY_CHUNK = 5_000


@dataclass(frozen=True)
class OnlineProgress:
    """One progress step; `phase` is readiness | scan | copy | catchup | verify | final."""

    phase: str
    table: str | None
    done: int
    total: int
    catchup_pass: int = 0
    pending_changes: int = 0


@dataclass(frozen=True)
class PromotedMarker:
    """What `finish()` wrote into the SQLite file: it must never take writes again."""

    promoted_at: datetime
    #: The redacted target URL (no password).
    target: str


@dataclass
class PrepareReport:
    readiness: ReadinessReport
    #: Rows copied per table from the first snapshot.
    rows_copied: dict[str, int] = field(default_factory=dict)
    catchup_passes: int = 0
    #: Keys replayed by every catch-up pass together (a key changed in two passes counts 2).
    keys_replayed: int = 0
    verification: VerificationReport | None = None
    #: Changelog position of the copy's snapshot (S0) and the position Postgres is at (S).
    snapshot_position: int = 0
    position: int = 0
    #: Rows per table at `position` (verified counts plus the replayed deltas since).
    rows: dict[str, int] = field(default_factory=dict)
    #: Wall-clock seconds per phase: readiness, capture, scan, copy, catchup, verify.
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class FinishReport:
    keys_replayed: int
    #: The final changelog position, replayed into Postgres.
    position: int
    #: Rows per table in both engines after the final delta.
    rows: dict[str, int]
    promoted_at: datetime
    target: str
    #: Seconds from finish() entry to the marker committed: the part of the write pause
    #: spent here.
    seconds: float
    #: Where those seconds went: connect (Postgres), lock (SQLite connection + write lock),
    #: replay (read, write, verify, commit Postgres), marker (marker + fence, SQLite commit).
    steps: dict[str, float] = field(default_factory=dict)


@dataclass
class _Replay:
    keys: int = 0
    #: Row count change per table (rows written minus rows deleted in Postgres).
    delta: dict[str, int] = field(default_factory=dict)


class OnlinePromotion:
    """Promote the SQLite file at `sqlite_path` into the Postgres at `dsn` without downtime.

    Thread-safe: `prepare`, `finish` and `abort` exclude each other; `abort()` and `cancel()`
    may be called from another thread while `prepare()` runs: it stops at its next progress
    step with PromotionAborted. After either, the object is spent: promote again with a new
    one.
    """

    def __init__(
        self,
        sqlite_path: str,
        dsn: str,
        *,
        progress: Callable[[OnlineProgress], None] | None = None,
        batch_rows: int = BATCH_ROWS,
        small_delta: int = SMALL_DELTA_KEYS,
        max_passes: int = MAX_PASSES,
        tables: Sequence[TableSpec] = DOMAIN_TABLES,
    ) -> None:
        self.sqlite_path = str(sqlite_path)
        self.dsn = dsn
        self.target = redact(dsn)
        self.tables = tuple(tables)
        self._progress = progress
        self._batch_rows = batch_rows
        self._small_delta = max(0, small_delta)
        self._max_passes = max(1, max_passes)
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        #: Set by a completed prepare(): Postgres equals SQLite at this changelog position.
        self._position: int | None = None
        self._counts: dict[str, int] = {}
        self._capture_id: str | None = None

    # --- public -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask a running `prepare()` to stop at its next progress step (PromotionAborted).

        Final for this object: a later prepare() raises PromotionAborted at once.
        """
        self._cancelled.set()

    def prepare(self) -> PrepareReport:
        """Runs WHILE the sidecar keeps writing: readiness, capture, scan + copy from one
        snapshot, catch-up passes, full verification at position S, catch-up again.

        Resumable: a re-run after a crash empties the target tables and starts again
        (capture stays installed). Raises ReadinessFailed, LooseData, VerificationFailed,
        TargetNotEmpty (rows in the target that no copy of this file put there),
        AlreadyPromoted, PromotionAborted, StoreUnavailable.
        """
        with self._lock:
            # Sticky: an abort() that won the race for the lock must not be undone by a
            # prepare() that started just before it (a new run needs a new object).
            if self._cancelled.is_set():
                raise PromotionAborted
            self._position = None
            try:
                return self._prepare()
            except psycopg.Error as exc:
                raise StoreUnavailable(self.target, _first_line(exc)) from exc

    def finish(self) -> FinishReport:
        """The write pause. The caller guarantees no SQLite write commits from now on.

        Holds SQLite's write lock throughout, replays the last delta, verifies the replayed
        keys row by row, commits Postgres, then writes the promoted marker. Raises
        VerificationFailed, LooseData, PromotionNotPrepared, StoreUnavailable; on an
        exception nothing is marked and SQLite remains the primary (prepare() or finish()
        may be run again).
        """
        with self._lock:
            if self._position is None:
                raise PromotionNotPrepared
            return self._finish(self._position)

    def abort(self) -> None:
        """Before cutover only: remove the capture (triggers + changelog) and empty the
        target tables; SQLite stays primary. Idempotent. Stops a running prepare() first.

        Raises AlreadyPromoted after a finish(). If Postgres cannot be reached, the capture
        is still removed and the call returns; the emptying happens at the next prepare().
        """
        self._cancelled.set()
        with self._lock:
            self._position = None
            meta = changelog.read_file_meta(self.sqlite_path)
            if meta is not None and meta.promoted_at is not None:
                raise AlreadyPromoted(self.sqlite_path, meta.target)
            changelog.remove(self.sqlite_path, self.tables, keep_meta=True)
            if meta is not None and meta.copy_target == self.target:
                try:
                    conn = pg_connect(self.dsn)
                    try:
                        truncate_tables(conn, self.tables)
                    finally:
                        conn.close()
                except StoreUnavailable as exc:
                    # The meta row keeps naming this target as ours, so the next prepare()
                    # may empty it; nothing else is left behind.
                    log.warning("abort: the target tables were not emptied: %s", exc)
                    return
            changelog.remove(self.sqlite_path, self.tables, keep_meta=False)

    # --- prepare ----------------------------------------------------------------------------

    def _emit(self, progress: OnlineProgress) -> None:
        # The final delta is not cancellable: it runs inside the caller's write pause.
        if progress.phase != "final" and self._cancelled.is_set():
            raise PromotionAborted
        if self._progress is not None:
            self._progress(progress)

    def _table_progress(self, phase: str) -> Callable[[str, int, int], None]:
        def report(table: str, done: int, total: int) -> None:
            self._emit(OnlineProgress(phase, table, done, total))

        return report

    def _prepare(self) -> PrepareReport:
        path = self.sqlite_path
        started = time.perf_counter()
        self._emit(OnlineProgress("readiness", None, 0, 1))
        with SqliteSnapshot(path) as snapshot:
            meta = changelog.read_meta(snapshot.conn)
            if meta is not None and meta.promoted_at is not None:
                raise AlreadyPromoted(path, meta.target)
            version = snapshot.schema_version()
        readiness = check_readiness(
            self.dsn,
            sqlite_version=version,
            sqlite_bytes=Path(path).stat().st_size,
            tables=self.tables,
        )
        report = PrepareReport(readiness)
        report.seconds["readiness"] = time.perf_counter() - started
        readiness.raise_if_failed()
        self._emit(OnlineProgress("readiness", None, 1, 1))

        conn = pg_connect(self.dsn)
        try:
            # Checked before anything is written to the SQLite file: a refusal leaves no trace.
            existing = target_counts(conn, self.tables)
            if any(existing.values()) and (meta is None or meta.copy_target != self.target):
                raise TargetNotEmpty(existing)

            started = time.perf_counter()
            meta = changelog.install(path, self.tables)
            self._capture_id = meta.capture_id
            changelog.set_copy_target(path, self.target)
            report.seconds["capture"] = time.perf_counter() - started

            with SqliteSnapshot(path) as snapshot:
                # The position is read in the snapshot's own read transaction: every change
                # with seq ≤ S0 is in the rows copied, every later one is replayed.
                s0 = changelog.position(snapshot.conn)
                started = time.perf_counter()
                scanned = scan(snapshot, self.tables, progress=self._table_progress("scan"))
                report.seconds["scan"] = time.perf_counter() - started
                scanned.report.raise_if_loose()
                started = time.perf_counter()
                report.rows_copied = copy_tables(
                    snapshot,
                    conn,
                    self.tables,
                    batch_rows=self._batch_rows,
                    progress=self._table_progress("copy"),
                    canonical_tables=scanned.canonical_tables,
                )
                report.seconds["copy"] = time.perf_counter() - started
            report.snapshot_position = s0
            self._counts = dict(report.rows_copied)
            position = s0
            changelog.prune(path, position)

            started = time.perf_counter()
            position = self._catch_up(conn, position, report, phase="catchup")
            report.seconds["catchup"] = time.perf_counter() - started

            started = time.perf_counter()
            position = self._verify(conn, position, report)
            report.seconds["verify"] = time.perf_counter() - started

            # The verification read the whole database while writes went on: catch up again
            # (reported as phase "verify", so progress phases never go backwards).
            started = time.perf_counter()
            position = self._catch_up(conn, position, report, phase="verify")
            report.seconds["catchup"] += time.perf_counter() - started
        finally:
            conn.close()
        report.position = position
        report.rows = dict(self._counts)
        self._position = position
        log.info(
            "promotion prepared: %d rows copied, %d catch-up passes, %d keys replayed, "
            "Postgres at changelog position %d",
            sum(report.rows_copied.values()),
            report.catchup_passes,
            report.keys_replayed,
            position,
        )
        return report

    def _catch_up(
        self, conn: psycopg.Connection[Any], position: int, report: PrepareReport, *, phase: str
    ) -> int:
        """Passes until one replays ≤ small_delta keys (or max_passes); returns the position."""
        for _ in range(self._max_passes):
            report.catchup_passes += 1
            with SqliteSnapshot(self.sqlite_path) as snapshot:
                upto = changelog.position(snapshot.conn)
                replay = self._replay(
                    conn,
                    snapshot.conn,
                    position,
                    upto,
                    phase=phase,
                    catchup_pass=report.catchup_passes,
                )
            report.keys_replayed += replay.keys
            position = upto
            changelog.prune(self.sqlite_path, position)
            if replay.keys <= self._small_delta:
                break
        return position

    def _verify(self, conn: psycopg.Connection[Any], position: int, report: PrepareReport) -> int:
        with SqliteSnapshot(self.sqlite_path) as snapshot:
            upto = changelog.position(snapshot.conn)
            replay = self._replay(
                conn, snapshot.conn, position, upto, phase="verify", catchup_pass=0
            )
            report.keys_replayed += replay.keys
            scanned = scan(snapshot, self.tables, progress=self._table_progress("verify"))
        scanned.report.raise_if_loose()
        verification = verify(self.dsn, scanned.checksums, self.tables)
        report.verification = verification
        verification.raise_if_failed()
        self._counts = {name: checksum.rows for name, checksum in scanned.checksums.items()}
        changelog.prune(self.sqlite_path, upto)
        return upto

    # --- replay -----------------------------------------------------------------------------

    def _replay(
        self,
        conn: psycopg.Connection[Any],
        source: apsw.Connection,
        after: int,
        upto: int,
        *,
        phase: str,
        catchup_pass: int,
    ) -> _Replay:
        """Make Postgres equal SQLite (as `source` sees it) for every key changed in
        (after, upto]; verify each replayed row; commit. Updates the tracked row counts."""
        keys = changelog.changed_keys(source, after, upto)
        total = sum(map(len, keys.values()))
        result = _Replay(keys=total)
        done = 0
        self._emit(OnlineProgress(phase, None, 0, total, catchup_pass, total))
        try:
            with conn.transaction():
                for spec in self.tables:
                    table_keys = keys.get(spec.name, [])
                    # Chunks bound the rows held in memory, whatever the size of the pass.
                    for start in range(0, len(table_keys), REPLAY_CHUNK):
                        chunk = table_keys[start : start + REPLAY_CHUNK]
                        result.delta[spec.name] = result.delta.get(spec.name, 0) + _replay_table(
                            conn, source, spec, chunk
                        )
                        done += len(chunk)
                        self._emit(
                            OnlineProgress(
                                phase, spec.name, done, total, catchup_pass, total - done
                            )
                        )
        except psycopg.Error as exc:
            raise StoreUnavailable(self.target, _first_line(exc)) from exc
        for name, delta in result.delta.items():
            self._counts[name] = self._counts.get(name, 0) + delta
        return result

    # --- finish -----------------------------------------------------------------------------

    def _finish(self, position: int) -> FinishReport:
        started = time.perf_counter()
        steps: dict[str, float] = {}

        def step(name: str, since: float) -> float:
            now = time.perf_counter()
            steps[name] = now - since
            return now

        conn = pg_connect(self.dsn)
        mark = step("connect", started)
        try:
            # The write lock is held from here to the marker: no write can commit between the
            # last replayed position and the marker, whatever the caller does.
            with changelog.write_transaction(self.sqlite_path) as source:
                mark = step("lock", mark)
                meta = changelog.read_meta(source)
                if (
                    meta is None
                    or meta.capture_id != self._capture_id
                    or not changelog.installed(source, self.tables)
                ):
                    raise VerificationFailed(
                        [],
                        "change capture was removed or replaced since prepare(); writes may "
                        "have escaped it: run prepare() again",
                    )
                end = changelog.position(source)
                replay = self._replay(conn, source, position, end, phase="final", catchup_pass=0)
                mark = step("replay", mark)
                promoted_at = changelog.mark_promoted(source, self.target, self.tables)
            step("marker", mark)
        finally:
            # On a failure after Postgres committed, Postgres is ahead of S; the tracked
            # counts follow Postgres (a replay's delta is measured against Postgres), and the
            # next finish() replays from S again, which rewrites the same rows.
            conn.close()
        self._position = None
        seconds = time.perf_counter() - started
        log.info(
            "promoted to %s: %d keys in the final delta, %.3f s", self.target, replay.keys, seconds
        )
        return FinishReport(
            keys_replayed=replay.keys,
            position=end,
            rows=dict(self._counts),
            promoted_at=datetime.fromisoformat(promoted_at),
            target=self.target,
            seconds=seconds,
            steps=steps,
        )


def _replay_table(
    conn: psycopg.Connection[Any], source: apsw.Connection, spec: TableSpec, keys: list[Any]
) -> int:
    """Replay `keys` of one table inside the caller's Postgres transaction; returns the row
    count change. Raises LooseData, VerificationFailed."""
    checker = RowChecker(spec)
    loose = LooseDataReport()
    key_index = spec.column_names.index(spec.key)
    rows: list[list[Any]] = []
    expected: dict[str, int] = {}
    for typed in changelog.typed_rows_by_key(source, spec, keys):
        types, raw = typed[0::2], typed[1::2]
        canonical = checker.check(types, raw, loose)
        loose.rows_scanned += 1
        if canonical is None:
            continue
        values = [
            v.decode("utf-8") if t == "text" and isinstance(v, bytes) else v
            for t, v in zip(types, raw, strict=True)
        ]
        rows.append(values)
        expected[values[key_index]] = row_hash(SEPARATOR.join(canonical))
    loose.raise_if_loose()
    # A key Postgres can hold is text; any other key still in SQLite was refused above, and
    # one that is gone cannot have been copied (the scan refuses it).
    text_keys = [k for k in keys if isinstance(k, str)]
    deleted, written = replay_rows(conn, spec, text_keys, rows)
    actual = postgres_row_hashes(conn, spec, text_keys)
    if actual != expected:
        raise VerificationFailed([spec.name], _describe_mismatch(spec, expected, actual))
    return written - deleted


def _describe_mismatch(
    spec: TableSpec, expected: Mapping[str, int], actual: Mapping[str, int]
) -> str:
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            return f"verification failed: {spec.name} {key!r} is in SQLite, missing in Postgres"
        if key not in expected:
            return (
                f"verification failed: {spec.name} {key!r} is gone from SQLite, not from Postgres"
            )
        if expected[key] != actual[key]:
            return f"verification failed: {spec.name} {key!r} differs between SQLite and Postgres"
    return f"verification failed: {spec.name}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def promoted_marker(sqlite_path: str) -> PromotedMarker | None:
    """The marker finish() wrote (promoted_at, redacted target), or None.

    A SQLite file with a marker must never take writes again: it is the rollback point
    (the domain tables refuse writes). Raises StoreUnavailable if the file cannot be read.
    """
    meta = changelog.read_file_meta(str(sqlite_path))
    if meta is None or meta.promoted_at is None:
        return None
    return PromotedMarker(datetime.fromisoformat(meta.promoted_at), meta.target or "")
