"""`Promoter`: the sidecar's side of online promotion (docs/promotion.md, "In the sidecar").

`POST /admin/promotion` starts one run in a background thread while the sidecar keeps
serving: `OnlinePromotion.prepare()` (readiness, change capture, copy, catch-up, verification)
runs against the SQLite file as the app writes to it. Then the cutover, the only moment writes
wait:

    open the Postgres store (before the pause: connecting is not the app's problem)
    close the write gate  ─┐  (SwitchableStore: new writes wait, none fail)
    drain in-flight writes │  write_pause_ms
    finish()               │  (last delta replayed and verified, promoted marker written)
    swap the engine        │
    open the gate         ─┘  (held writes go to Postgres, in arrival order)
    close the SQLite store (the file stays: the read-only rollback point)

Any failure before the swap — readiness, loose data, Postgres gone, a verification mismatch,
an abort request — runs `abort()` (capture removed, target emptied), re-opens the gate onto
SQLite and leaves the state `RolledBack` with a typed `error`. The status document
(`document()`) is the contract's `GET /admin/promotion` body.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from liteshift.errors import LiteshiftError
from liteshift.promotion.errors import PromotionAborted
from liteshift.promotion.online import (
    FinishReport,
    OnlineProgress,
    OnlinePromotion,
    PrepareReport,
    promoted_marker,
)
from liteshift.promotion.state import State
from liteshift.sidecar.settings import Settings
from liteshift.sidecar.switchable import SwitchableStore
from liteshift.store import Observer, Store, changelog, open_store
from liteshift.store.connect import check_url
from liteshift.store.errors import BadURL
from liteshift.store.urls import parse_url, redact

if TYPE_CHECKING:
    from liteshift.sidecar.context import Sidecar

log = logging.getLogger("liteshift.sidecar.promotion")

#: How long the cutover waits for writes already handed to SQLite to commit. A group-commit
#: batch takes milliseconds; a write stuck this long means something is wrong: roll back.
DRAIN_TIMEOUT_SECONDS = 10.0

#: States in which a run is under way (a new POST to the same target joins it).
RUNNING = frozenset(
    {State.READINESS, State.COPYING, State.CATCHING_UP, State.VERIFYING, State.CUTTING_OVER}
)

_PHASE_STATES = {
    "readiness": State.READINESS,
    "scan": State.COPYING,
    "copy": State.COPYING,
    "catchup": State.CATCHING_UP,
    "verify": State.VERIFYING,
    "final": State.CUTTING_OVER,
}


# --- errors ---------------------------------------------------------------------------------


class PromotionRefused(LiteshiftError):
    """A promotion request that conflicts with the sidecar's state; `status` is its HTTP code."""

    status = 409

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        super().__init__(detail)


class BadPromotionTarget(LiteshiftError):
    """The target is not a usable Postgres URL (HTTP 400)."""

    code = "bad_target"
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


class PromotedFileRefused(LiteshiftError):
    """`liteshift serve` on a SQLite file that was promoted, without a target to serve it from."""

    code = "promoted_file"

    def __init__(self, path: str, target: str, promoted_at: object) -> None:
        self.path = path
        self.target = target
        super().__init__(
            f"{path} was promoted to {target} at {promoted_at} and must not take writes again; "
            "set LITESHIFT_PROMOTION_TARGET_URL (or _FILE) to serve it from Postgres"
        )


class CutoverFailed(LiteshiftError):
    """The write pause could not complete (in-flight writes did not drain)."""

    code = "cutover_failed"


# --- startup --------------------------------------------------------------------------------


def serving_settings(settings: Settings) -> Settings:
    """The settings to serve with: a promoted SQLite file is served from its Postgres target
    (LITESHIFT_PROMOTION_TARGET_URL); without a target, PromotedFileRefused — a promoted file
    never takes writes again."""
    path = settings.sqlite_path
    if path is None or not path.is_file():
        return settings
    marker = promoted_marker(str(path))
    if marker is None:
        return settings
    if settings.promotion_target_url is None:
        raise PromotedFileRefused(str(path), marker.target, marker.promoted_at)
    served = redact(settings.promotion_target_url)
    if served != marker.target:
        # Not refused: the same database can be spelled two ways (port, options, host alias).
        log.warning(
            "%s was promoted to %s but LITESHIFT_PROMOTION_TARGET_URL is %s; serving that",
            path,
            marker.target,
            served,
        )
    # Tokens generated next to the SQLite file stay where they are.
    return replace(
        settings, db_url=settings.promotion_target_url, token_dir=settings.resolved_token_dir()
    )


def open_primary(
    settings: Settings, url: str, *, observer: Observer | None, migrate: bool
) -> Store:
    """Open `url` with the sidecar's store options (the same for SQLite at start and for the
    Postgres store a promotion swaps in)."""
    return open_store(
        url,
        media_url=settings.media_db_url if settings.media_enabled else None,
        migrate=migrate,
        synchronous=settings.sqlite_synchronous,
        vector_dimension=settings.vector_dimension,
        observer=observer,
    )


# --- the run --------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


@dataclass
class _Status:
    state: State = State.IDLE
    target: str | None = None
    phase: str | None = None
    table: str | None = None
    done: int = 0
    total: int = 0
    catchup_passes: int = 0
    pending_changes: int = 0
    rows_copied: dict[str, int] = field(default_factory=dict)
    write_pause_ms: float | None = None
    verification: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def document(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "target": self.target,
            "phase": self.phase,
            "progress": {"table": self.table, "done": self.done, "total": self.total},
            "catchup_passes": self.catchup_passes,
            "pending_changes": self.pending_changes,
            "rows_copied": dict(self.rows_copied),
            "write_pause_ms": self.write_pause_ms,
            "verification": self.verification,
            "error": self.error,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }


def scrub(text: str, url: str) -> str:
    """`text` without `url`'s password: libpq quotes a malformed URL back in its errors."""
    text = text.replace(url, redact(url))
    creds = url.partition("://")[2].rpartition("@")[0]
    password = creds.partition(":")[2]
    return text.replace(password, "***") if password else text


def _error(exc: BaseException, url: str) -> dict[str, str]:
    if isinstance(exc, LiteshiftError):
        return {"error": exc.code, "detail": scrub(str(exc), url)}
    return {"error": "internal", "detail": scrub(f"{type(exc).__name__}: {exc}", url)}


PromotionFactory = Callable[..., OnlinePromotion]


class Promoter:
    """Runs at most one online promotion of the sidecar's SQLite store at a time."""

    def __init__(
        self,
        sidecar: Sidecar,
        *,
        factory: PromotionFactory = OnlinePromotion,
        promotion_options: dict[str, Any] | None = None,
    ) -> None:
        self._sidecar = sidecar
        self._factory = factory
        self._options = dict(promotion_options or {})
        if sidecar.settings.promotion_batch_rows is not None:
            self._options.setdefault("batch_rows", sidecar.settings.promotion_batch_rows)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._abort = threading.Event()
        self._promotion: OnlinePromotion | None = None
        self._target_url: str | None = None
        self._status = _Status()
        if sidecar.store.engine == "postgres":
            # Already on Postgres: promoted before this start (or configured so).
            self._status.state = State.PROMOTED
            self._status.target = redact(sidecar.settings.db_url)
        self._publish()

    # --- requests ---------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """The `GET /admin/promotion` body."""
        with self._lock:
            return self._status.document()

    def start(self, target_url: str) -> tuple[bool, dict[str, Any]]:
        """Start promoting to `target_url`; returns (started or joined a run, document).
        (False, document) means already promoted. Raises BadPromotionTarget,
        PromotionRefused(promotion_in_progress)."""
        try:
            url = parse_url(target_url)
            check_url(url)
        except BadURL as exc:
            raise BadPromotionTarget(scrub(str(exc), target_url)) from None
        if url.engine != "postgres":
            raise BadPromotionTarget(
                f"the promotion target must be a postgresql:// URL, not {url.display()}"
            )
        with self._lock:
            state = self._status.state
            if state == State.PROMOTED:
                return False, self._status.document()
            if state in RUNNING:
                if target_url != self._target_url:
                    raise PromotionRefused(
                        "promotion_in_progress",
                        f"a promotion to {self._status.target} is running; abort it first",
                    )
                return True, self._status.document()
            store = self._sidecar.store
            path = self._sidecar.settings.sqlite_path
            if not isinstance(store, SwitchableStore) or path is None:
                raise PromotionRefused(
                    "not_promotable", "this sidecar's store cannot be promoted online"
                )
            self._abort.clear()
            self._promotion = None
            self._target_url = target_url
            self._status = _Status(
                state=State.READINESS,
                target=redact(target_url),
                phase="readiness",
                started_at=_now(),
            )
            self._thread = threading.Thread(
                target=self._run,
                args=(store, str(path), target_url),
                name="liteshift-promotion",
                daemon=True,
            )
            self._thread.start()
            document = self._status.document()
        self._publish()
        return True, document

    def abort(self, timeout: float = 60.0) -> dict[str, Any]:
        """Stop a run before CuttingOver and roll back; waits up to `timeout` for it to end.
        Raises PromotionRefused (already_promoted, cutover_in_progress)."""
        with self._lock:
            state = self._status.state
            if state == State.PROMOTED:
                raise PromotionRefused(
                    "already_promoted",
                    "the sidecar serves from Postgres; rolling back is a manual procedure "
                    "(docs/promotion.md)",
                )
            if state == State.CUTTING_OVER:
                raise PromotionRefused(
                    "cutover_in_progress", "the cutover is under way and cannot be aborted"
                )
            thread = self._thread
            if state in RUNNING:
                self._request_abort()
            elif state == State.IDLE:
                self._remove_leftover_capture()
        if thread is not None:
            thread.join(timeout)
        return self.document()

    def _remove_leftover_capture(self) -> None:
        # Lock held, no run. A sidecar killed mid-promotion restarts Idle with the change
        # capture still in the file (triggers logging every write): an abort removes it. The
        # meta row stays, naming the target as ours, so the next prepare() may empty it.
        path = self._sidecar.settings.sqlite_path
        if path is None or not isinstance(self._sidecar.store, SwitchableStore):
            return
        meta = changelog.read_file_meta(str(path))
        if meta is None or meta.promoted_at is not None:
            return
        changelog.remove(str(path), keep_meta=True)
        self._status = _Status(
            state=State.ROLLED_BACK,
            target=meta.copy_target,
            error={
                "error": PromotionAborted.code,
                "detail": "the change capture of an interrupted promotion was removed; "
                "SQLite stays the primary",
            },
            finished_at=_now(),
        )
        self._sidecar.metrics.set_promotion_state(State.ROLLED_BACK.value)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop a run before the sidecar closes its store (a cutover is let finish)."""
        with self._lock:
            self._request_abort()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def wait(self, timeout: float) -> bool:
        """Wait for the current run's thread to end; False on timeout (tests, shutdown)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    def _request_abort(self) -> None:
        # Lock held. prepare() stops at its next progress step (PromotionAborted); between
        # prepare() and the cutover the worker checks the flag itself.
        self._abort.set()
        if self._promotion is not None:
            self._promotion.cancel()

    # --- the worker -------------------------------------------------------------------------

    def _update(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self._status, name, value)
        if "state" in changes:
            self._publish()

    def _publish(self) -> None:
        self._sidecar.metrics.set_promotion_state(self._status.state.value)

    def _progress(self, progress: OnlineProgress) -> None:
        with self._lock:
            status = self._status
            if status.state != State.CUTTING_OVER:
                status.state = _PHASE_STATES.get(progress.phase, status.state)
            status.phase = progress.phase
            status.table = progress.table
            status.done = progress.done
            status.total = progress.total
            status.catchup_passes = max(status.catchup_passes, progress.catchup_pass)
            status.pending_changes = progress.pending_changes
            if progress.phase == "copy" and progress.table is not None:
                status.rows_copied[progress.table] = progress.done
        self._publish()

    def _run(self, store: SwitchableStore, sqlite_path: str, target_url: str) -> None:
        promotion: OnlinePromotion | None = None
        target: Store | None = None
        try:
            promotion = self._factory(
                sqlite_path, target_url, progress=self._progress, **self._options
            )
            with self._lock:
                self._promotion = promotion
                if self._abort.is_set():
                    raise PromotionAborted
            report = promotion.prepare()
            self._record_prepare(report)
            sidecar = self._sidecar
            target = open_primary(
                sidecar.settings, target_url, observer=sidecar.metrics.observe, migrate=False
            )
            with self._lock:
                # From here on an abort request is refused (409 cutover_in_progress).
                if self._abort.is_set():
                    raise PromotionAborted
                self._status.state = State.CUTTING_OVER
                self._status.phase = "final"
            self._publish()
            old, finished = self._cut_over(store, promotion, target, sqlite_path)
        except BaseException as exc:  # the run must end in a state, never die
            if target is not None:
                self._close_quietly(target)
            self._roll_back(promotion, exc, target_url)
            return
        # Swapped: nothing below may roll back (the SQLite file carries the marker).
        settings = self._sidecar.settings
        self._sidecar.settings = replace(
            settings, db_url=target_url, token_dir=settings.resolved_token_dir()
        )
        self._sidecar.metrics.set_engine(target.engine)
        with self._lock:
            if finished is not None:
                self._status.verification = {
                    "tables": {t: {"rows": n, "ok": True} for t, n in finished.rows.items()}
                }
            self._status.state = State.PROMOTED
            self._status.phase = None
            self._status.pending_changes = 0
            self._status.finished_at = _now()
        self._publish()
        log.info(
            "promoted to %s; writes paused %.1f ms, of which finish() %.1f ms (%d keys)",
            self._status.target,
            self._status.write_pause_ms or 0.0,
            finished.seconds * 1000 if finished else 0.0,
            finished.keys_replayed if finished else 0,
        )
        try:
            store.close_retired(old)
        except Exception:  # the retired store is no longer used: closing it must not fail a run
            log.exception("closing the replaced SQLite store failed")

    def _cut_over(
        self, store: SwitchableStore, promotion: OnlinePromotion, target: Store, sqlite_path: str
    ) -> tuple[Store, FinishReport | None]:
        """The write pause: gate closed → drained → finish() → swap → gate open."""
        closed = time.perf_counter()
        store.pause_writes()
        try:
            if not store.wait_drained(DRAIN_TIMEOUT_SECONDS):
                raise CutoverFailed(
                    f"{store.writes_in_flight} SQLite writes did not finish within "
                    f"{DRAIN_TIMEOUT_SECONDS:.0f} s of the write pause"
                )
            log.info("write gate closed, drained in %.1f ms", (time.perf_counter() - closed) * 1e3)
            finished: FinishReport | None
            try:
                finished = promotion.finish()
            except BaseException:
                # finish() promises no marker on failure; if one was written anyway, SQLite
                # must not take another write: go on to Postgres.
                if promoted_marker(sqlite_path) is None:
                    raise
                log.error("finish() failed after writing the promoted marker; cutting over")
                finished = None
            old = store.swap(target)
        finally:
            store.resume_writes()
            pause_ms = (time.perf_counter() - closed) * 1000
            self._update(write_pause_ms=round(pause_ms, 3))
        return old, finished

    def _record_prepare(self, report: PrepareReport) -> None:
        with self._lock:
            self._status.rows_copied = dict(report.rows_copied)
            self._status.catchup_passes = report.catchup_passes
            if report.verification is not None:
                self._status.verification = {
                    "tables": {
                        t.table: {"rows": t.source.rows, "ok": t.ok}
                        for t in report.verification.tables
                    }
                }

    def _roll_back(
        self, promotion: OnlinePromotion | None, exc: BaseException, target_url: str
    ) -> None:
        aborted = isinstance(exc, PromotionAborted) or self._abort.is_set()
        error = _error(PromotionAborted() if aborted else exc, target_url)
        if not aborted and not isinstance(exc, LiteshiftError):
            log.error("promotion failed", exc_info=exc)
        else:
            log.warning("promotion rolled back: %s", error["detail"])
        if promotion is not None:
            try:
                promotion.abort()
            except Exception as cleanup:  # reported; the state still ends
                reason = _error(cleanup, target_url)["detail"]
                log.warning("promotion abort() failed: %s", reason)
                error["detail"] += f" (cleanup failed: {reason})"
        self._update(state=State.ROLLED_BACK, error=error, finished_at=_now())

    @staticmethod
    def _close_quietly(store: Store) -> None:
        try:
            store.close()
        except Exception:  # a store no longer used must not fail a run
            log.exception("closing the replaced store failed")
