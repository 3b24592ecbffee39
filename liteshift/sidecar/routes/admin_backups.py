"""`/admin/backups`: verified backups of this sidecar's store, taken on request (the operator's
schedule and DatastoreBackup objects call these).

The work is `liteshift.backup` run in a worker thread; the event loop keeps serving `/v1`.
One backup operation (create or prune) runs at a time per sidecar: a second request while one
runs gets 409 `backup_in_progress` at once instead of queueing behind a copy that can take
minutes (the caller retries; two copies at once would only double the I/O).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from liteshift.backup import (
    BackupError,
    BackupNotFound,
    BackupOptions,
    InvalidBackupOption,
    Manifest,
    create_backup,
    list_backups,
    parse_age,
    prune_backups,
)
from liteshift.sidecar.errors import RequestError
from liteshift.sidecar.routing import Call, Operation


class BackupRequest(BaseModel):
    """Options of one backup; `{}` takes the defaults."""

    model_config = ConfigDict(extra="forbid")

    compression: Literal["none", "zstd", "gzip"] = Field(
        default="none", description="compress the data file (zstd is fast, gzip ~10x slower)"
    )
    full_check: bool = Field(
        default=False,
        description="PRAGMA integrity_check (~20x slower) instead of quick_check (SQLite)",
    )


class ManifestOut(BaseModel):
    """A backup's manifest (docs/backup.md describes each field)."""

    format_version: int
    id: str
    datastore: str
    namespace: str
    engine: Literal["sqlite", "postgres"]
    created_at: AwareDatetime
    file: str
    size: int
    sha256: str
    compression: Literal["none", "zstd", "gzip"]
    schema_version: int | None
    row_counts: dict[str, int]
    liteshift_version: str
    check: str
    check_result: str
    duration_seconds: float
    extra: dict[str, Any]


class BackupEntryOut(BaseModel):
    """One backup directory: complete (with its manifest) or incomplete (with why)."""

    name: str
    complete: bool
    problem: str | None = Field(description="why the backup is incomplete; null when complete")
    created_at: AwareDatetime
    manifest: ManifestOut | None


class BackupListOut(BaseModel):
    """The backups in LITESHIFT_BACKUP_DIR, oldest first."""

    backups: list[BackupEntryOut]


class PruneRequest(BaseModel):
    """Retention to apply; at least one of the two."""

    model_config = ConfigDict(extra="forbid")

    keep_last: int | None = Field(
        default=None, ge=1, description="keep the newest N complete backups"
    )
    max_age: str | None = Field(
        default=None, description="delete backups older than this: 90s, 15m, 12h, 7d, 2w"
    )


class DeletedOut(BaseModel):
    name: str
    reason: str


class PruneOut(BaseModel):
    """What retention deleted and how many complete backups remain."""

    deleted: list[DeletedOut]
    kept: int


def _lock(call: Call) -> asyncio.Lock:
    state = call.request.app.state
    lock = getattr(state, "backup_lock", None)
    if lock is None:
        lock = state.backup_lock = asyncio.Lock()
    assert isinstance(lock, asyncio.Lock)
    return lock


def _busy() -> RequestError:
    return RequestError(
        409,
        "backup_in_progress",
        "another backup or prune is running on this sidecar; retry when it has finished",
    )


def _failed(exc: Exception) -> RequestError:
    if isinstance(exc, InvalidBackupOption):
        return RequestError(422, exc.code, str(exc))
    # Not the request's fault: the store, the disk or a tool failed. The detail is the
    # library's one-line reason, which the operator copies into the Datastore's condition.
    code = exc.code if isinstance(exc, BackupError) else "backup_failed"
    detail = str(exc) if isinstance(exc, BackupError) else f"backup failed: {exc}"
    return RequestError(500, code, detail)


async def create(call: Call) -> Any:
    """Take a verified backup now; 201 with its manifest."""
    body: BackupRequest = call.body
    settings, lock = call.sidecar.settings, _lock(call)
    if lock.locked():
        raise _busy()
    async with lock:
        options = BackupOptions(
            datastore=settings.datastore,
            namespace=settings.namespace,
            compression=body.compression,
            full_check=body.full_check,
        )
        try:
            manifest: Manifest = await asyncio.to_thread(
                create_backup, settings.db_url, settings.backup_dir, options
            )
        except (BackupError, OSError) as exc:
            raise _failed(exc) from None
    call.sidecar.metrics.backup_succeeded()
    return manifest.to_json()


def _entries(call: Call) -> dict[str, Any]:
    try:
        found = list_backups(call.sidecar.settings.backup_dir)
    except BackupNotFound:
        found = []  # no backup was ever taken here: the directory appears with the first one
    return {
        "backups": [
            {
                "name": entry.name,
                "complete": entry.complete,
                "problem": entry.problem,
                "created_at": entry.created_at,
                "manifest": entry.manifest.to_json() if entry.manifest else None,
            }
            for entry in found
        ]
    }


async def list_all(call: Call) -> Any:
    """Every backup in LITESHIFT_BACKUP_DIR with its completeness."""
    return await asyncio.to_thread(_entries, call)


async def prune(call: Call) -> Any:
    """Apply retention to this datastore's backups; deleted backups are gone from disk."""
    body: PruneRequest = call.body
    if body.keep_last is None and body.max_age is None:
        raise RequestError(
            422,
            "validation_error",
            [{"loc": ["body"], "msg": "give keep_last, max_age or both", "type": "value_error"}],
        )
    try:
        max_age = parse_age(body.max_age) if body.max_age is not None else None
    except InvalidBackupOption as exc:
        raise _failed(exc) from None
    settings, lock = call.sidecar.settings, _lock(call)
    if lock.locked():
        raise _busy()
    async with lock:
        if not settings.backup_dir.is_dir():
            return {"deleted": [], "kept": 0}
        try:
            result = await asyncio.to_thread(
                prune_backups,
                settings.backup_dir,
                keep_last=body.keep_last,
                max_age=max_age,
                datastore=settings.datastore,
            )
        except (BackupError, OSError) as exc:
            raise _failed(exc) from None
    return {
        "deleted": [{"name": d.path.name, "reason": d.reason} for d in result.deleted],
        "kept": sum(1 for entry in result.kept if entry.complete),
    }


OPERATIONS = [
    Operation(
        "POST",
        "/admin/backups",
        create,
        "Take a verified backup into LITESHIFT_BACKUP_DIR (one at a time)",
        "admin",
        auth="admin",
        body=BackupRequest,
        response=ManifestOut,
        status=201,
        errors=(400, 409, 422, 500, 503),
    ),
    Operation(
        "GET",
        "/admin/backups",
        list_all,
        "List the backups in LITESHIFT_BACKUP_DIR, oldest first, with completeness",
        "admin",
        auth="admin",
        response=BackupListOut,
    ),
    Operation(
        "POST",
        "/admin/backups/prune",
        prune,
        "Apply retention (keep_last, max_age) to this datastore's backups",
        "admin",
        auth="admin",
        body=PruneRequest,
        response=PruneOut,
        errors=(400, 409, 422, 500),
    ),
]
