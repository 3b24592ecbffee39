"""Promotion: a timer per Datastore that decides, provisions Postgres and drives the sidecar.

Each tick (every `TIMER_TICK_SECONDS`):

- Idle, Recommended, RolledBack: every `LITESHIFT_PROMOTION_INTERVAL` seconds (sooner when
  `liteshift.io/promote=now` is set) evaluate the criteria against Prometheus
  (`spec.promotion.prometheus.url`, else `LITESHIFT_PROMETHEUS_URL`); a `promote` decision
  starts an attempt;
- ProvisioningPostgres: create the managed Postgres (or find the external DSN Secret) and
  wait until it is ready;
- ReadinessChecks … CuttingOver: `POST /admin/promotion` with the target DSN (again whenever
  the sidecar reports Idle: it restarted, and the run restarts), then mirror
  `GET /admin/promotion` into `status.promotion`;
- Promoted: `status.engine: postgres`, so the next reconcile points the sidecar at Postgres.

`liteshift.io/rollback=now` before the cutover asks the sidecar to abort. Every decision is
made by `liteshift.operator.promotion_status` (pure); this module only does the I/O, writes
the status patch and posts the Events. Everything needed to resume is in `status.promotion`,
so a restarted operator carries on where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import kopf

from liteshift.admin_client import (
    AdminClient,
    PromotionConflict,
    SidecarError,
    SidecarRefused,
    SidecarUnreachable,
)
from liteshift.errors import LiteshiftError
from liteshift.operator import provision, status
from liteshift.operator.handlers.backups import AdminTokenMissing, read_admin_token
from liteshift.operator.handlers.runtime import runtime
from liteshift.operator.kube import Kube, KubeError
from liteshift.operator.model import GROUP, PLURAL, VERSION, Datastore, InvalidSpecError
from liteshift.operator.promotion_status import (
    MIRRORED,
    ROLLBACK_ANNOTATION,
    Notice,
    Step,
    apply_patch,
    conditions,
    conditions_differ,
    decision_changed,
    decision_notice,
    evaluate_step,
    mirror_step,
    needs_start,
    previous_for,
    promotion_patch,
    provisioned_step,
    refuse_rollback,
    request_for,
    rollback_step,
    thresholds_for,
    waiting_step,
)
from liteshift.operator.specs import sidecar
from liteshift.promotion import criteria
from liteshift.promotion.criteria import PROMOTE_ANNOTATION, Decision
from liteshift.promotion.prometheus import PrometheusAPI
from liteshift.promotion.state import IN_FLIGHT, PromotionStatus, State

log = logging.getLogger("liteshift.operator.promotion")

PROMOTION_MEMO_KEY = "liteshift.promotion"
#: How often the timer wakes up per Datastore: the pace at which a running promotion's
#: progress reaches status. Criteria are evaluated every `evaluation_interval`.
TIMER_TICK_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PromotionSettings:
    """Knobs of the promotion handler; built from the environment unless an embedder put one
    into the memo before kopf starts."""

    clock: Callable[[], datetime] = _utcnow
    #: LITESHIFT_PROMOTION_INTERVAL: seconds between two criteria evaluations of a Datastore.
    evaluation_interval: float = 30.0
    #: LITESHIFT_PROMETHEUS_URL: the Prometheus used when spec.promotion.prometheus.url is
    #: not set (an operator-wide default).
    prometheus_url: str | None = None
    #: LITESHIFT_SIDECAR_URL, as for backups: the sidecar's base URL with `{name}` and
    #: `{namespace}`; unset means the in-cluster Service.
    sidecar_url: str | None = None
    #: Seconds an admin call may take (start and status answer at once; an abort waits up to
    #: 60 s for the run to roll back).
    request_timeout: float = 90.0
    #: Per Datastore uid: when criteria were last evaluated (monotonic), the last decision
    #: (for Events on change, and the conditions), and the last status.promotion written —
    #: a tick that sees an older copy through the watch must not replay a transition.
    evaluated_at: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, Decision] = field(default_factory=dict)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: One step at a time per Datastore: the timer and the rollback handler share the state.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PromotionSettings:
        """From the operator's environment; raises BadOperatorSetting."""
        env = os.environ if environ is None else environ
        return cls(
            evaluation_interval=_seconds(env, "LITESHIFT_PROMOTION_INTERVAL", 30.0),
            prometheus_url=env.get("LITESHIFT_PROMETHEUS_URL") or None,
            sidecar_url=env.get("LITESHIFT_SIDECAR_URL") or None,
        )

    def url_for(self, ds: Datastore) -> str:
        if self.sidecar_url:
            return self.sidecar_url.format(name=ds.name, namespace=ds.namespace)
        return sidecar.endpoint(ds)

    def prometheus_for(self, ds: Datastore) -> PrometheusAPI | None:
        url = ds.spec.promotion.prometheus.url or self.prometheus_url
        return PrometheusAPI(url) if url else None


class BadOperatorSetting(LiteshiftError):
    """An operator environment variable that cannot be used."""

    code = "bad_operator_setting"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise BadOperatorSetting(f"{name}: {text!r} is not a number of seconds above 0")
    return value


def promotion_settings(memo: Any) -> PromotionSettings:
    found = memo.get(PROMOTION_MEMO_KEY)
    if not isinstance(found, PromotionSettings):
        found = PromotionSettings.from_env()
        memo[PROMOTION_MEMO_KEY] = found
    return found


@kopf.on.startup()
def configure_promotion(memo: kopf.Memo, **_: Any) -> None:
    # Built once into the operator-wide memo so every object's memo copy shares it.
    try:
        promotion_settings(memo)
    except BadOperatorSetting as exc:
        raise kopf.PermanentError(str(exc)) from None


@dataclass
class Tick:
    """What one tick collected: the status it leads to, extras, Events, annotations."""

    current: PromotionStatus
    extras: dict[str, Any] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    remove_annotations: set[str] = field(default_factory=set)

    def take(self, step: Step) -> None:
        self.current = step.status
        self.extras.update(step.extras)
        self.notices.extend(step.notices)
        self.remove_annotations.update(step.remove_annotations)


@kopf.timer(GROUP, VERSION, PLURAL, interval=TIMER_TICK_SECONDS, initial_delay=TIMER_TICK_SECONDS)
async def drive_promotion(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    """One step of the promotion of this Datastore (see the module docstring)."""
    await _step(body, patch, memo)


@kopf.on.event(GROUP, VERSION, PLURAL, annotations={ROLLBACK_ANNOTATION: "now"})
async def rollback_requested(
    body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, type: str | None, **_: Any
) -> None:
    """`liteshift.io/rollback=now` is acted on at once, not at the next tick: a copy may be
    seconds from its cutover. (An event handler: kopf leaves our own `liteshift.io/`
    annotations out of the diffs that trigger update handlers.)"""
    if type != "DELETED":
        await _step(body, patch, memo)


async def _step(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo) -> None:
    settings = promotion_settings(memo)
    try:
        ds = Datastore.parse(body)
    except InvalidSpecError:
        return  # reported by the reconcile handler
    uid = str(body.metadata.get("uid") or body.metadata.name)
    lock = settings.locks.setdefault(uid, asyncio.Lock())
    async with lock:
        await _locked_step(body, patch, ds=ds, uid=uid, settings=settings, kube=runtime(memo).kube)


async def _locked_step(
    body: kopf.Body,
    patch: kopf.Patch,
    *,
    ds: Datastore,
    uid: str,
    settings: PromotionSettings,
    kube: Kube,
) -> None:
    raw = dict(settings.written.get(uid) or body.status.get("promotion") or {})
    if settings.written.get(uid) is None and not body.status.get("promotion"):
        return  # the reconcile handler has not initialised status yet
    annotations = dict(body.metadata.annotations)
    tick = Tick(PromotionStatus.from_status(raw))

    if annotations.get(ROLLBACK_ANNOTATION) == "now":
        await _rollback(tick, ds, kube, settings)
    if tick.current.state in (State.IDLE, State.RECOMMENDED, State.ROLLED_BACK):
        await _evaluate(tick, ds, uid=uid, raw=raw, annotations=annotations, settings=settings)
    if tick.current.state is State.PROVISIONING:
        await _provision(tick, ds, kube, settings)
    if tick.current.state in MIRRORED:
        await _follow_sidecar(tick, ds, kube, settings)

    previous = dict(body.status)
    merged = apply_patch(raw, promotion_patch(raw, tick.current, tick.extras))
    fresh: dict[str, Any] = {}
    if merged != raw or merged != dict(previous.get("promotion") or {}):
        fresh["promotion"] = merged
        settings.written[uid] = merged
    if tick.current.state is State.PROMOTED and previous.get("engine") != "postgres":
        # The next reconcile builds the sidecar for Postgres (status.engine is its input).
        fresh["engine"] = "postgres"
    wanted = conditions(tick.current, settings.decisions.get(uid))
    live = list(previous.get("conditions") or [])
    if conditions_differ(live, wanted):
        fresh["conditions"] = status.merge_conditions(
            live, wanted, generation=ds.generation, now=status.now_rfc3339(settings.clock())
        )
    if fresh:
        # One JSON patch on the freshest body, only the conditions changed here: the drift
        # check and the backups write theirs from their own copies at the same time.
        patch.fns.append(status.status_writer(previous, fresh))
    for key in tick.remove_annotations:
        if key in annotations:
            patch.metadata.annotations[key] = None
    for notice in tick.notices:
        kopf.event(body, type=notice.type, reason=notice.reason, message=notice.message)


async def _evaluate(
    tick: Tick,
    ds: Datastore,
    *,
    uid: str,
    raw: Mapping[str, Any],
    annotations: Mapping[str, str],
    settings: PromotionSettings,
) -> None:
    """Criteria → decision; `raw` (status.promotion as read) holds the last evaluation's
    sustained criteria, for hysteresis."""
    requested = annotations.get(PROMOTE_ANNOTATION) == "now" or ds.spec.engine == "postgres"
    last = settings.evaluated_at.get(uid)
    if (
        not requested
        and last is not None
        and time.monotonic() - last < settings.evaluation_interval
    ):
        return
    settings.evaluated_at[uid] = time.monotonic()
    thresholds = thresholds_for(ds)
    decision = await asyncio.to_thread(
        criteria.evaluate,
        criteria.Target(ds.name, ds.namespace),
        request_for(ds, annotations),
        thresholds,
        settings.prometheus_for(ds),
        now=settings.clock(),
        previous=previous_for(raw, tick.current),
    )
    if decision_changed(settings.decisions.get(uid), decision):
        tick.notices.append(decision_notice(decision))
    settings.decisions[uid] = decision
    tick.take(evaluate_step(tick.current, decision, thresholds, settings.clock()))


async def _provision(tick: Tick, ds: Datastore, kube: Kube, settings: PromotionSettings) -> None:
    try:
        target = await asyncio.to_thread(provision.provision, kube, ds)
    except KubeError as exc:
        tick.take(waiting_step(tick.current, f"provisioning Postgres failed (retried): {exc}"))
        return
    if target.url is None:
        tick.take(waiting_step(tick.current, target.waiting or "waiting for Postgres"))
        return
    tick.take(provisioned_step(tick.current, target.mode, settings.clock()))


async def _client(ds: Datastore, kube: Kube, settings: PromotionSettings) -> AdminClient:
    token = await asyncio.to_thread(read_admin_token, kube, ds)
    return AdminClient(settings.url_for(ds), token, timeout=settings.request_timeout)


async def _follow_sidecar(
    tick: Tick, ds: Datastore, kube: Kube, settings: PromotionSettings
) -> None:
    """Start the sidecar's run when it is not running, then mirror what it reports."""
    try:
        client = await _client(ds, kube, settings)
        doc = await client.promotion_status()
        if needs_start(tick.current, doc):
            target = await asyncio.to_thread(provision.read_dsn, kube, ds)
            doc = await client.start_promotion(target)
    except (SidecarError, AdminTokenMissing, provision.DsnUnavailable, KubeError) as exc:
        _stalled(tick, ds, settings, exc)
        return
    tick.take(mirror_step(tick.current, doc, settings.clock()))


def _stalled(tick: Tick, ds: Datastore, settings: PromotionSettings, exc: Exception) -> None:
    """The sidecar cannot be driven this tick: say why (once); the next tick tries again.

    Refusals too (e.g. 409 promotion_in_progress to another target, started by hand): the
    operator never rolls back a run it did not see fail."""
    if isinstance(exc, SidecarUnreachable):
        why = f"cannot reach the sidecar at {settings.url_for(ds)} ({exc.reason}); retrying"
    elif isinstance(exc, SidecarRefused):
        why = f"the sidecar refused: {exc.status} {exc.error}: {exc.detail}; retrying"
    else:
        why = f"{exc}; retrying"
    message = f"{tick.current.state.value}: {why}"
    if tick.current.message != message:
        tick.notices.append(Notice("Warning", "PromotionStalled", message))
        tick.current = replace(tick.current, message=message)


async def _rollback(tick: Tick, ds: Datastore, kube: Kube, settings: PromotionSettings) -> None:
    """`liteshift.io/rollback=now`: abort before the cutover; refuse (once) after it."""
    current = tick.current
    state = current.state
    if state is State.PROMOTED:
        tick.take(
            refuse_rollback(
                current,
                "the store was promoted already: rolling back after the cutover is the manual"
                " procedure in docs/promotion.md",
            )
        )
        return
    if state not in IN_FLIGHT and state is not State.CUTTING_OVER:
        tick.remove_annotations.add(ROLLBACK_ANNOTATION)  # nothing is running: nothing to do
        return
    detail = "the sidecar was not running it yet"
    if state is not State.PROVISIONING:
        try:
            client = await _client(ds, kube, settings)
            doc = await client.abort_promotion()
        except PromotionConflict as exc:
            # Cutting over, or cut over already: the mirror reports the outcome; the annotation
            # stays until then (a failed cutover still returns to SQLite).
            log.info("rollback of %s/%s refused by the sidecar: %s", ds.namespace, ds.name, exc)
            return
        except (SidecarError, AdminTokenMissing, KubeError) as exc:
            _stalled(tick, ds, settings, exc)
            return
        detail = str((doc.get("error") or {}).get("detail") or "the sidecar aborted the run")
    if state is State.CUTTING_OVER:
        return  # the abort was accepted, the mirror records RolledBack
    tick.take(rollback_step(current, settings.clock(), detail))
    tick.remove_annotations.add(ROLLBACK_ANNOTATION)
