"""Datastore lifecycle: reconcile on create/update/resume, drift timer, reclaim on delete.

Thin: parse the spec, run `liteshift.operator.reconcile` in a thread (it blocks on the API),
then write `status` and post Events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import kopf

from liteshift.operator import reconcile, status
from liteshift.operator.handlers.runtime import runtime
from liteshift.operator.kube import KubeError
from liteshift.operator.model import GROUP, PLURAL, VERSION, Datastore, InvalidSpecError

#: How often the drift timer wakes up; the real period per object is Runtime.drift_interval.
TIMER_TICK_SECONDS = 2.0


def _post(body: kopf.Body, events: list[reconcile.Event]) -> None:
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _parse(body: kopf.Body, patch: kopf.Patch) -> Datastore:
    try:
        return Datastore.parse(body)
    except InvalidSpecError as exc:
        generation = int(body.metadata.get("generation") or 1)
        patch.status.update(status.invalid(body.status, generation, str(exc)))
        kopf.warn(body, reason="InvalidSpec", message=str(exc))
        # Permanent: retrying cannot fix a spec; the next edit of the spec triggers a new run.
        raise kopf.PermanentError(f"invalid spec: {exc}") from None


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile_datastore(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    """Build every child from the spec and create-or-patch it; then write status."""
    ds = _parse(body, patch)
    settings = runtime(memo)
    try:
        result = await asyncio.to_thread(reconcile.reconcile, settings.kube, ds, dict(body.status))
    except KubeError as exc:
        kopf.warn(body, reason="ApplyFailed", message=str(exc))
        raise kopf.TemporaryError(str(exc), delay=settings.retry_delay) from None
    _write_status(patch, dict(body.status), result.status)
    _post(body, result.events)


def _write_status(patch: kopf.Patch, previous: Mapping[str, Any], fresh: Mapping[str, Any]) -> None:
    # Onto the freshest body, with only the conditions changed here: a backup or the
    # promotion may have written theirs since `previous` was read, and a merge patch of the
    # whole list would undo that until their next tick.
    patch.fns.append(status.status_writer(previous, fresh))


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_TICK_SECONDS, initial_delay=TIMER_TICK_SECONDS)
async def check_drift(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """Every drift interval: re-apply changed or deleted children, refresh readiness."""
    settings = runtime(memo)
    now = time.monotonic()
    if now - float(memo.get("drift_checked_at", float("-inf"))) < settings.drift_interval:
        return
    memo["drift_checked_at"] = now
    previous = dict(body.status)
    try:
        ds = Datastore.parse(body)
    except InvalidSpecError:
        return  # reported by the reconcile handler already
    if previous.get("observedGeneration") != ds.generation:
        return  # the create/update handler owns this generation until it succeeds
    try:
        result = await asyncio.to_thread(reconcile.correct_drift, settings.kube, ds, previous)
    except KubeError as exc:
        kopf.warn(body, reason="DriftCheckFailed", message=str(exc))
        return
    if _differs(previous, result.status):
        _write_status(patch, previous, result.status)
    _post(body, result.events)


def _differs(previous: Mapping[str, Any], fresh: Mapping[str, Any]) -> bool:
    return any(previous.get(key) != value for key, value in fresh.items())


@kopf.on.delete(GROUP, VERSION, PLURAL)
async def release_datastore(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Honour spec.reclaimPolicy: Delete removes the PVCs and generated Secrets."""
    settings = runtime(memo)
    namespace, name = body.metadata.namespace or "default", body.metadata.name or ""
    try:
        events = await asyncio.to_thread(
            reconcile.release, settings.kube, namespace, name, dict(body.spec)
        )
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=settings.retry_delay) from None
    _post(body, events)
