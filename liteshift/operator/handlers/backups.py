"""Backups: the schedule of each Datastore (`spec.backup`) and on-demand `DatastoreBackup`s.

The operator does not copy data itself: it calls the sidecar's admin API (`POST
/admin/backups`, then `POST /admin/backups/prune` for `spec.backup.retention`) with the admin
token from the Datastore's auth Secret, the way CloudNativePG's operator asks its instance
manager. Results go to `status.lastBackup`, `status.backups`, the `BackupsHealthy` condition
and Events. A `DatastoreBackup` that completes becomes its Datastore's `status.lastBackup` too
(trigger `manual`): the Datastore's timer reads the completed ones from a kopf index, so the
record survives an operator restart and only the Datastore's own handler writes its status.

Status is written with `status.status_writer` (a kopf patch function applied to the
freshest body, guarded by resourceVersion), never as a whole list from an older copy: a backup
may take minutes, and the drift check or the promotion may change Ready, Promoted … meanwhile.

`BackupSettings` (kept in kopf's memo under `BACKUP_MEMO_KEY`) holds what an embedder may
change: the clock (tests move time instead of sleeping a minute), the sidecar URL for an
operator running outside the cluster, timeouts and retry delays.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kopf

from liteshift.admin_client import (
    AdminClient,
    SidecarBusy,
    SidecarError,
    SidecarRefused,
    SidecarUnreachable,
)
from liteshift.errors import LiteshiftError
from liteshift.operator import backup_schedule, status
from liteshift.operator.handlers.runtime import runtime
from liteshift.operator.kube import Kube, KubeError
from liteshift.operator.model import (
    BACKUP_PLURAL,
    GROUP,
    PLURAL,
    VERSION,
    Datastore,
    InvalidSpecError,
)
from liteshift.operator.specs import sidecar
from liteshift.operator.specs.common import auth_secret_name

log = logging.getLogger("liteshift.operator.backups")

BACKUP_MEMO_KEY = "liteshift.backups"
#: How often the schedule timer wakes up per Datastore; the schedule decides what it does.
TIMER_TICK_SECONDS = 2.0
ADMIN_TOKEN_KEY = "admin-token"  # noqa: S105 - a key name, not a secret


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class BackupSettings:
    """Knobs of the backup handlers; built from the environment unless an embedder put one
    into the memo before kopf starts."""

    #: The operator's idea of "now" (injectable: tests advance it instead of sleeping).
    clock: Callable[[], datetime] = _utcnow
    #: LITESHIFT_SIDECAR_URL: the sidecar's base URL, `{name}` and `{namespace}` filled in.
    #: Unset: the in-cluster Service (`http://<name>.<namespace>.svc:8080`). For an operator
    #: run outside the cluster (with a port-forward) and for tests; only whoever runs the
    #: operator can set it, so no Datastore can send the admin token elsewhere.
    sidecar_url: str | None = None
    #: LITESHIFT_BACKUP_TIMEOUT: seconds one backup may take before the call is abandoned.
    request_timeout: float = 3600.0
    #: After a failed scheduled backup, try again this much later (if before the next fire).
    retry_after: timedelta = timedelta(minutes=5)
    #: A DatastoreBackup whose sidecar is unreachable or busy is retried this often …
    on_demand_retry_delay: float = 10.0
    #: … this many times before it is marked Failed.
    on_demand_retries: int = 3
    #: When the operator first saw each Datastore (anchor for objects without
    #: creationTimestamp); keyed by uid.
    first_seen: dict[str, datetime] = field(default_factory=dict)
    #: The last scheduled attempt per uid (start, failed), as known before the status patch
    #: comes back through the watch: a slow watch must not make the next tick back up again.
    attempts: dict[str, tuple[datetime, bool]] = field(default_factory=dict)
    #: Final status of each DatastoreBackup handled, by uid: should kopf run the create
    #: handler again (an event older than our status patch), it re-applies this instead of
    #: taking a second backup.
    finished: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BackupSettings:
        env = os.environ if environ is None else environ
        return cls(
            sidecar_url=env.get("LITESHIFT_SIDECAR_URL") or None,
            request_timeout=float(env.get("LITESHIFT_BACKUP_TIMEOUT") or 3600.0),
        )

    def url_for(self, ds: Datastore) -> str:
        if self.sidecar_url:
            return self.sidecar_url.format(name=ds.name, namespace=ds.namespace)
        return sidecar.endpoint(ds)


def backup_settings(memo: Any) -> BackupSettings:
    found = memo.get(BACKUP_MEMO_KEY)
    if not isinstance(found, BackupSettings):
        found = BackupSettings.from_env()
        memo[BACKUP_MEMO_KEY] = found
    return found


@kopf.on.startup()
def configure_backups(memo: kopf.Memo, **_: Any) -> None:
    # Built once into the operator-wide memo so every object's memo copy shares it.
    backup_settings(memo)


class AdminTokenMissing(LiteshiftError):
    """The auth Secret or its admin-token key is missing or unreadable."""

    code = "admin_token_missing"


def read_admin_token(kube: Kube, ds: Datastore) -> str:
    """The sidecar's admin token from the Datastore's auth Secret (`data.admin-token`)."""
    name = auth_secret_name(ds)
    secret = kube.get("Secret", ds.namespace, name)
    if secret is None:
        raise AdminTokenMissing(f"the auth Secret {name!r} does not exist")
    encoded = (secret.get("data") or {}).get(ADMIN_TOKEN_KEY)
    if not encoded:
        raise AdminTokenMissing(f"the auth Secret {name!r} has no key {ADMIN_TOKEN_KEY!r}")
    try:
        return base64.b64decode(encoded, validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        raise AdminTokenMissing(
            f"key {ADMIN_TOKEN_KEY!r} of the auth Secret {name!r} is not valid base64 text"
        ) from None


@dataclass(frozen=True)
class Failure:
    """Why a backup attempt failed, as a condition reason and a sentence to act on."""

    reason: str
    message: str


def describe_failure(exc: Exception, ds: Datastore, url: str) -> Failure:
    """The reason and an actionable message for a failed attempt."""
    pods = f"kubectl -n {ds.namespace} get pods -l app.kubernetes.io/instance={ds.name}"
    if isinstance(exc, SidecarUnreachable):
        return Failure(
            "SidecarUnreachable",
            f"cannot reach the sidecar at {url} ({exc.reason}); is it running and ready?"
            f" Check `{pods}`.",
        )
    if isinstance(exc, SidecarRefused) and exc.status in (401, 403):
        return Failure(
            "AdminTokenRejected",
            f"the sidecar at {url} refused the admin token from Secret"
            f" {auth_secret_name(ds)!r} ({exc.error}); restart the sidecar after changing the"
            " Secret so both use the same token.",
        )
    if isinstance(exc, SidecarRefused):
        return Failure(
            "BackupFailed",
            f"the sidecar could not take a backup: {exc.detail} ({exc.status} {exc.error});"
            f" see the sidecar's log (`kubectl -n {ds.namespace} logs {ds.name}-0`).",
        )
    if isinstance(exc, AdminTokenMissing):
        return Failure(
            "AdminTokenMissing", f"{exc}; it must hold the sidecar's {ADMIN_TOKEN_KEY!r}."
        )
    return Failure("BackupFailed", f"{exc}")


@dataclass(frozen=True)
class Attempt:
    """One backup call: the manifest on success, else a failure; and retention's outcome."""

    started: datetime
    completed: datetime
    manifest: Mapping[str, Any] | None = None
    failure: Failure | None = None
    retained: int | None = None
    pruned: tuple[str, ...] = ()
    prune_problem: str | None = None


async def take_backup(
    kube: Kube,
    ds: Datastore,
    settings: BackupSettings,
    *,
    compression: str,
    full_check: bool,
    retention: bool,
) -> Attempt:
    """Ask the sidecar for a backup (and apply retention when `retention`). Raises SidecarBusy
    when another backup runs there; every other failure is in the returned Attempt."""
    started = settings.clock()
    url = settings.url_for(ds)
    try:
        token = await asyncio.to_thread(read_admin_token, kube, ds)
        client = AdminClient(url, token, timeout=settings.request_timeout)
        manifest = await client.create_backup(compression=compression, full_check=full_check)
    except SidecarBusy:
        raise
    except (SidecarError, AdminTokenMissing, KubeError) as exc:
        return Attempt(started, settings.clock(), failure=describe_failure(exc, ds, url))
    if not retention:
        return Attempt(started, settings.clock(), manifest=manifest)
    keep = ds.spec.backup.retention
    try:
        pruned = await client.prune(keep_last=keep.keep_last, max_age=keep.max_age)
    except SidecarError as exc:
        # The backup exists and is verified; retention runs again after the next one.
        return Attempt(started, settings.clock(), manifest=manifest, prune_problem=str(exc))
    return Attempt(
        started,
        settings.clock(),
        manifest=manifest,
        retained=int(pruned.get("kept", 0)),
        pruned=tuple(str(d.get("name")) for d in pruned.get("deleted") or []),
    )


def location(manifest: Mapping[str, Any]) -> str:
    return f"{sidecar.BACKUP_DIR}/{manifest.get('id')}"


def schedule_status(
    previous: Mapping[str, Any], ds: Datastore, attempt: Attempt, settings: BackupSettings
) -> dict[str, Any]:
    """The Datastore status patch after a scheduled attempt (pure)."""
    started = status.now_rfc3339(attempt.started)
    completed = status.now_rfc3339(attempt.completed)
    book = dict(previous.get("backups") or {})
    manifest = attempt.manifest
    if manifest is not None:
        where = location(manifest)
        last: dict[str, Any] = {
            "name": manifest.get("id"),
            "trigger": "schedule",
            "engine": manifest.get("engine"),
            "succeeded": True,
            "startedAt": started,
            "completedAt": completed,
            "sizeBytes": manifest.get("size"),
            "sha256": manifest.get("sha256"),
            "location": where,
            "message": f"verified by {manifest.get('check')}",
        }
        book.update(lastSuccessfulAt=completed, consecutiveFailures=0)
        if attempt.retained is not None:
            book["retained"] = attempt.retained
        condition = backup_schedule.succeeded(
            str(manifest.get("id")), completed, int(manifest.get("size") or 0), where
        )
    else:
        assert attempt.failure is not None
        last = {
            "trigger": "schedule",
            "succeeded": False,
            "startedAt": started,
            "completedAt": completed,
            "message": attempt.failure.message,
        }
        book.update(
            lastFailedAt=completed,
            consecutiveFailures=int(book.get("consecutiveFailures") or 0) + 1,
        )
        condition = status.Condition(
            status.BACKUPS_HEALTHY, "False", attempt.failure.reason, attempt.failure.message
        )
    book["nextScheduledAt"] = status.now_rfc3339(
        backup_schedule.next_run(
            ds.spec.backup.schedule,
            attempt.started,
            last_attempt_failed=manifest is None,
            retry_after=settings.retry_after,
        )
    )
    return {
        "lastBackup": last,
        "backups": book,
        "conditions": status.merge_conditions(
            previous.get("conditions") or [], [condition], generation=ds.generation, now=completed
        ),
    }


def write_status(patch: kopf.Patch, previous: Mapping[str, Any], fresh: Mapping[str, Any]) -> None:
    """Write `fresh` (computed from `previous`) through `status.status_writer`: one JSON patch
    on the freshest body, conditions other handlers wrote meanwhile kept."""
    patch.fns.append(status.status_writer(previous, fresh))


def manual_backup_status(
    previous: Mapping[str, Any], ds: Datastore, record: Mapping[str, Any], created: datetime | None
) -> dict[str, Any] | None:
    """The Datastore status patch recording a completed DatastoreBackup (`record`: its index
    entry) as `lastBackup`, or None when lastBackup is already that backup or a newer one, or
    the record predates this Datastore (a namesake deleted before). Pure."""
    last = previous.get("lastBackup") or {}
    completed = backup_schedule.parse_time(record.get("completedAt"))
    if completed is None or last.get("name") == record.get("backupName"):
        return None
    last_completed = backup_schedule.parse_time(last.get("completedAt"))
    # Times have whole seconds: a DatastoreBackup finishing in the same second as the last
    # scheduled backup counts as the newer (it was asked for after that one started).
    if last_completed is not None and completed < last_completed:
        return None
    if created is not None and completed < created:
        return None
    moment = str(record["completedAt"])
    book = dict(previous.get("backups") or {})
    known = backup_schedule.parse_time(book.get("lastSuccessfulAt"))
    if known is None or known < completed:
        book["lastSuccessfulAt"] = moment
    fresh: dict[str, Any] = {
        "lastBackup": {
            "name": record.get("backupName"),
            "trigger": "manual",
            "engine": record.get("engine"),
            "succeeded": True,
            "startedAt": record.get("startedAt"),
            "completedAt": moment,
            "sizeBytes": record.get("sizeBytes"),
            "sha256": record.get("sha256"),
            "location": record.get("location"),
            "message": f"DatastoreBackup {record.get('object')}: {record.get('message')}",
        },
        "backups": book,
    }
    if ds.spec.backup.enabled:
        condition = backup_schedule.succeeded(
            str(record.get("backupName")),
            moment,
            int(record.get("sizeBytes") or 0),
            str(record.get("location")),
        )
        fresh["conditions"] = status.merge_conditions(
            previous.get("conditions") or [], [condition], generation=ds.generation, now=moment
        )
    return fresh


def newest_completed(records: Any) -> Mapping[str, Any] | None:
    """The completed DatastoreBackup (index entry) that finished last."""
    dated = [
        (moment, str(r.get("object")), r)
        for r in records or []
        if (moment := backup_schedule.parse_time(r.get("completedAt"))) is not None
    ]
    return max(dated, key=lambda item: item[:2])[2] if dated else None


def _uid(body: kopf.Body) -> str:
    return str(body.metadata.get("uid") or body.metadata.name)


def _anchor(body: kopf.Body, settings: BackupSettings, now: datetime) -> tuple[datetime, bool]:
    """(anchor, whether the last scheduled attempt failed) — see backup_schedule."""
    last = body.status.get("lastBackup") or {}
    anchor: datetime | None = None
    failed = False
    if last.get("trigger") == "schedule":
        anchor = backup_schedule.parse_time(last.get("startedAt"))
        failed = last.get("succeeded") is False
    if anchor is None:
        anchor = backup_schedule.parse_time(body.metadata.get("creationTimestamp"))
    if anchor is None:
        anchor = settings.first_seen.setdefault(_uid(body), now)
    remembered = settings.attempts.get(_uid(body))
    if remembered is not None and remembered[0] > anchor:
        return remembered
    return anchor, failed


def _scheduled_backup_due(body: kopf.Body, ds: Datastore, settings: BackupSettings,
                          now: datetime) -> bool:  # fmt: skip
    """Whether the schedule wants a backup now. After a manual backup became lastBackup, the
    last scheduled attempt's time is gone from status, but its outcome is kept as
    backups.nextScheduledAt: a manual backup neither moves nor triggers the schedule."""
    last = body.status.get("lastBackup") or {}
    planned = backup_schedule.parse_time((body.status.get("backups") or {}).get("nextScheduledAt"))
    if last.get("trigger") == "manual" and planned is not None:
        remembered = settings.attempts.get(_uid(body))
        if remembered is None:
            return planned <= now
    anchor, failed = _anchor(body, settings, now)
    return backup_schedule.is_due(
        ds.spec.backup.schedule,
        anchor,
        now,
        last_attempt_failed=failed,
        retry_after=settings.retry_after,
    )


def _condition(previous: Mapping[str, Any]) -> Mapping[str, Any]:
    for cond in previous.get("conditions") or []:
        if cond.get("type") == status.BACKUPS_HEALTHY:
            return dict(cond)
    return {}


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_TICK_SECONDS, initial_delay=TIMER_TICK_SECONDS)
async def run_scheduled_backups(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **kwargs: Any
) -> None:
    """Each tick: record a DatastoreBackup that completed since lastBackup; else take the
    backup `spec.backup.schedule` says is due; else keep BackupsHealthy current (a success
    turns stale after STALE_PERIODS schedule periods)."""
    settings = backup_settings(memo)
    try:
        ds = Datastore.parse(body)
    except InvalidSpecError:
        return  # reported by the reconcile handler
    previous = dict(body.status)
    index: kopf.Index[tuple[str, str], dict[str, Any]] = kwargs["completed_backups_by_datastore"]
    record = newest_completed(index.get((ds.namespace, ds.name), []))
    if record is not None:
        created = backup_schedule.parse_time(body.metadata.get("creationTimestamp"))
        fresh = manual_backup_status(previous, ds, record, created)
        if fresh is not None:
            write_status(patch, previous, fresh)
            return
    if not ds.spec.backup.enabled:
        return
    now = settings.clock()
    if _scheduled_backup_due(body, ds, settings, now):
        try:
            attempt = await take_backup(
                runtime(memo).kube,
                ds,
                settings,
                compression=ds.spec.backup.compression,
                full_check=ds.spec.backup.verify == "full",
                retention=True,
            )
        except SidecarBusy:
            # Not an attempt: still due, the next tick tries again. A sidecar busy for ever
            # (a stuck backup) shows up below as stale backups.
            log.info("sidecar of %s/%s is busy with another backup", ds.namespace, ds.name)
        else:
            settings.attempts[_uid(body)] = (attempt.started, attempt.manifest is None)
            write_status(patch, previous, schedule_status(previous, ds, attempt, settings))
            _announce(body, attempt)
            return
    _refresh_health(body, patch, ds, previous, now)


def _refresh_health(
    body: kopf.Body, patch: kopf.Patch, ds: Datastore, previous: Mapping[str, Any], now: datetime
) -> None:
    """Write BackupsHealthy when it changed: turned stale, or was overwritten by another
    status writer working from an older copy of the status."""
    last = previous.get("lastBackup") or {}
    fresh = backup_schedule.stale_or_fresh(ds.spec.backup.schedule, last, now)
    current = _condition(previous)
    if fresh is None or (current.get("status"), current.get("reason")) == (
        fresh.status,
        fresh.reason,
    ):
        return
    conditions = status.merge_conditions(
        previous.get("conditions") or [], [fresh], generation=ds.generation,
        now=status.now_rfc3339(now),
    )  # fmt: skip
    write_status(patch, previous, {"conditions": conditions})
    if fresh.status == "False":
        kopf.event(body, type="Warning", reason=fresh.reason, message=fresh.message)


def _announce(body: kopf.Body, attempt: Attempt) -> None:
    manifest = attempt.manifest
    if manifest is None:
        assert attempt.failure is not None
        kopf.event(body, type="Warning", reason="BackupFailed", message=attempt.failure.message)
        return
    kopf.event(
        body,
        type="Normal",
        reason="BackupSucceeded",
        message=f"backup {manifest.get('id')} ({manifest.get('size')} bytes,"
        f" sha256 {str(manifest.get('sha256'))[:12]}…) verified and stored at"
        f" {location(manifest)}",
    )
    if attempt.pruned:
        kopf.event(
            body,
            type="Normal",
            reason="BackupsPruned",
            message=f"retention deleted {', '.join(attempt.pruned)};"
            f" {attempt.retained} backups kept",
        )
    if attempt.prune_problem:
        kopf.event(body, type="Warning", reason="RetentionFailed", message=attempt.prune_problem)


# --- on-demand backups ----------------------------------------------------------------------


@kopf.index(GROUP, VERSION, PLURAL)
def datastores_by_name(body: kopf.Body, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """Datastores by (namespace, name), so a DatastoreBackup finds its Datastore without an
    extra API call (kopf watches Datastores anyway)."""
    key = (body.metadata.namespace or "default", body.metadata.name or "")
    return {key: {"metadata": dict(body.metadata), "spec": dict(body.spec)}}


@kopf.index(GROUP, VERSION, BACKUP_PLURAL)
def completed_backups_by_datastore(
    body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]] | None:
    """Completed DatastoreBackups by their Datastore's (namespace, name), with what the
    Datastore's lastBackup needs; the Datastore's timer records the newest one."""
    st = body.status
    if st.get("phase") != "Completed":
        return None
    key = (body.metadata.namespace or "default", str(body.spec.get("datastore") or ""))
    fields = ("backupName", "engine", "startedAt", "completedAt", "sizeBytes", "sha256",
              "location", "message")  # fmt: skip
    return {key: {"object": body.metadata.name, **{f: st.get(f) for f in fields}}}


def backup_object_status(attempt: Attempt, *, verify: str, generation: int) -> dict[str, Any]:
    """The DatastoreBackup status after its attempt (pure)."""
    started = status.now_rfc3339(attempt.started)
    completed = status.now_rfc3339(attempt.completed)
    manifest = attempt.manifest
    if manifest is None:
        assert attempt.failure is not None
        return {
            "phase": "Failed",
            "reason": attempt.failure.reason,
            "message": attempt.failure.message,
            "startedAt": started,
            "completedAt": completed,
            "observedGeneration": generation,
        }
    schema_version = manifest.get("schema_version")
    return {
        "phase": "Completed",
        "reason": "BackupCompleted",
        "message": f"verified by {manifest.get('check')}; stored at {location(manifest)}",
        "engine": manifest.get("engine"),
        "backupName": manifest.get("id"),
        "location": location(manifest),
        "startedAt": started,
        "completedAt": completed,
        "sizeBytes": manifest.get("size"),
        "sha256": manifest.get("sha256"),
        "schemaVersion": None if schema_version is None else str(schema_version),
        "verified": verify,
        "rowCounts": dict(manifest.get("row_counts") or {}),
        "observedGeneration": generation,
    }


def _give_up(
    body: kopf.Body, patch: kopf.Patch, reason: str, message: str, started: datetime
) -> None:
    moment = status.now_rfc3339(started)
    patch.status.update(
        phase="Failed",
        reason=reason,
        message=message,
        startedAt=moment,
        completedAt=moment,
        observedGeneration=int(body.metadata.get("generation") or 1),
    )
    kopf.event(body, type="Warning", reason="BackupFailed", message=message)


@kopf.on.create(GROUP, VERSION, BACKUP_PLURAL)
async def run_backup_object(
    body: kopf.Body,
    patch: kopf.Patch,
    memo: kopf.Memo,
    retry: int,
    **kwargs: Any,
) -> None:
    """A DatastoreBackup was created: take that backup now through the Datastore's sidecar."""
    if body.status.get("phase") in ("Completed", "Failed"):
        return
    settings = backup_settings(memo)
    uid = str(body.metadata.get("uid") or body.metadata.name)
    if uid in settings.finished:
        patch.status.update(settings.finished[uid])
        return
    index: kopf.Index[tuple[str, str], dict[str, Any]] = kwargs["datastores_by_name"]
    namespace = body.metadata.namespace or "default"
    target = str(body.spec.get("datastore") or "")
    verify = str(body.spec.get("verify") or "quick")
    found = list(index.get((namespace, target), []))
    retries_left = retry < settings.on_demand_retries
    if not found:
        message = f"Datastore {target!r} does not exist in namespace {namespace!r}"
        if retries_left:
            raise kopf.TemporaryError(message, delay=settings.on_demand_retry_delay)
        _give_up(body, patch, "DatastoreNotFound", f"{message}; create it first.", settings.clock())
        return
    try:
        ds = Datastore.parse(found[0])
    except InvalidSpecError as exc:
        _give_up(body, patch, "InvalidDatastore", f"Datastore {target!r}: {exc}", settings.clock())
        return
    try:
        attempt = await take_backup(
            runtime(memo).kube,
            ds,
            settings,
            compression=str(body.spec.get("compression") or "zstd"),
            full_check=verify == "full",
            retention=False,  # an on-demand backup is kept until a person deletes it
        )
    except SidecarBusy as exc:
        if retries_left:
            raise kopf.TemporaryError(str(exc), delay=settings.on_demand_retry_delay) from None
        _give_up(body, patch, "SidecarBusy", f"{exc}; create a new DatastoreBackup later.",
                 settings.clock())  # fmt: skip
        return
    failure = attempt.failure
    if failure is not None and failure.reason == "SidecarUnreachable" and retries_left:
        raise kopf.TemporaryError(failure.message, delay=settings.on_demand_retry_delay)
    result = backup_object_status(
        attempt, verify=verify, generation=int(body.metadata.get("generation") or 1)
    )
    settings.finished[uid] = result
    patch.status.update(result)
    if attempt.manifest is None:
        assert attempt.failure is not None
        kopf.event(body, type="Warning", reason="BackupFailed", message=attempt.failure.message)
    else:
        kopf.event(
            body,
            type="Normal",
            reason="BackupCompleted",
            message=f"backup {attempt.manifest.get('id')} of Datastore {target!r}"
            f" ({attempt.manifest.get('size')} bytes) verified and stored at"
            f" {location(attempt.manifest)}",
        )
