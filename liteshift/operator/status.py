"""The one status helper: phase, reason and conditions of a Datastore, as a status patch.

Every concern (reconcile, drift, backups, promotion) writes `status` through `register_phase`,
so condition timestamps behave the same everywhere: `lastTransitionTime` moves only when a
condition's status flips. Pure: the caller passes the previous status and the time.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from liteshift.operator.model import Datastore
from liteshift.operator.specs import sidecar

READY = "Ready"
BACKUPS_HEALTHY = "BackupsHealthy"
METRICS_AVAILABLE = "MetricsAvailable"
PROMOTION_RECOMMENDED = "PromotionRecommended"
PROMOTED = "Promoted"
CONDITION_TYPES = (READY, BACKUPS_HEALTHY, METRICS_AVAILABLE, PROMOTION_RECOMMENDED, PROMOTED)


@dataclass(frozen=True)
class Condition:
    """One condition as a person reads it: a status, a CamelCase reason, a sentence."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def now_rfc3339(now: datetime.datetime | None = None) -> str:
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Iterable[Mapping[str, Any]],
    updates: Iterable[Condition],
    *,
    generation: int,
    now: str,
    defaults: Iterable[Condition] = (),
) -> list[dict[str, Any]]:
    """Apply `updates` over `existing`; `defaults` fill only types not present yet."""
    by_type: dict[str, dict[str, Any]] = {str(c["type"]): dict(c) for c in existing}
    for cond in defaults:
        if cond.type not in by_type:
            by_type[cond.type] = _as_dict(cond, generation, now)
    for cond in updates:
        previous = by_type.get(cond.type)
        fresh = _as_dict(cond, generation, now)
        if previous is not None and previous.get("status") == cond.status:
            fresh["lastTransitionTime"] = previous.get("lastTransitionTime", now)
        by_type[cond.type] = fresh
    order = {name: index for index, name in enumerate(CONDITION_TYPES)}
    return sorted(by_type.values(), key=lambda c: (order.get(c["type"], len(order)), c["type"]))


def status_writer(previous: Mapping[str, Any], fresh: Mapping[str, Any]) -> Callable[[Any], None]:
    """A kopf patch function (`patch.fns`) writing the status patch `fresh` that one writer
    computed from the status it read (`previous`): of its fields and conditions only those it
    changed — a type it changed is set, a type it added (a default)
    is set only if still absent. kopf runs it on the freshest body and sends one JSON patch
    guarded by resourceVersion, so concurrent writers of other condition types (drift,
    backups, promotion, each working from its own older copy) never undo each other, as a
    merge patch of the whole list would; and the fields and conditions land together."""
    before = {str(c["type"]): dict(c) for c in previous.get("conditions") or []}
    # Only the fields this writer changed: re-sending one it left as it read it would put
    # back a stale value another writer replaced meanwhile (the drift check's old copy of
    # `engine` flipping a just-promoted Datastore back to sqlite for a tick).
    fields = {
        key: value
        for key, value in fresh.items()
        if key != "conditions" and previous.get(key) != value
    }
    changed = [
        dict(c) for c in fresh.get("conditions") or [] if before.get(str(c["type"])) != dict(c)
    ]

    def apply(body: Any) -> None:  # kopf's RawBody: a TypedDict, so not a MutableMapping
        status: MutableMapping[str, Any] = body.setdefault("status", {})
        _merge_patch(status, fields)
        by_type = {str(c["type"]): dict(c) for c in status.get("conditions") or []}
        for cond in changed:
            if str(cond["type"]) in before or str(cond["type"]) not in by_type:
                by_type[str(cond["type"])] = cond
        order = {name: index for index, name in enumerate(CONDITION_TYPES)}
        status["conditions"] = sorted(
            by_type.values(), key=lambda c: (order.get(c["type"], len(order)), c["type"])
        )

    return apply


def _merge_patch(target: MutableMapping[str, Any], patch: Mapping[str, Any]) -> None:
    """RFC 7386 on a dict in place (what a merge patch of these fields would have done)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(target.get(key), MutableMapping):
            _merge_patch(target[key], value)
        else:
            target[key] = value.copy() if isinstance(value, dict) else value


def _as_dict(cond: Condition, generation: int, now: str) -> dict[str, Any]:
    return {
        "type": cond.type,
        "status": cond.status,
        "reason": cond.reason,
        "message": cond.message,
        "lastTransitionTime": now,
        "observedGeneration": generation,
    }


def register_phase(
    previous: Mapping[str, Any] | None,
    *,
    generation: int,
    phase: str,
    reason: str,
    message: str,
    conditions: Iterable[Condition] = (),
    defaults: Iterable[Condition] = (),
    now: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The status patch for a phase change (CloudNativePG's RegisterPhase, as data).

    `fields` are other top-level status fields (engine, endpoint, replicas …), in camelCase.
    """
    moment = now or now_rfc3339()
    previous = previous or {}
    return {
        **fields,
        "phase": phase,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "conditions": merge_conditions(
            previous.get("conditions") or [],
            conditions,
            generation=generation,
            now=moment,
            defaults=defaults,
        ),
    }


def initial_conditions(ds: Datastore) -> list[Condition]:
    """What the other concerns report until they have run once."""
    if ds.spec.backup.enabled:
        backups = Condition(
            BACKUPS_HEALTHY,
            "Unknown",
            "NoBackupYet",
            f"backups run on schedule {ds.spec.backup.schedule!r} (UTC); none has run yet."
            " Create a DatastoreBackup to take one now.",
        )
    else:
        backups = Condition(
            BACKUPS_HEALTHY,
            "Unknown",
            "BackupsDisabled",
            "spec.backup.enabled is false: nothing protects this data store; enable backups.",
        )
    if ds.spec.promotion.policy == "off":
        metrics = Condition(
            METRICS_AVAILABLE,
            "Unknown",
            "PromotionOff",
            "promotion.policy is off, so metrics are not evaluated.",
        )
    elif ds.spec.promotion.prometheus.url is None:
        metrics = Condition(
            METRICS_AVAILABLE,
            "Unknown",
            "NoPrometheusConfigured",
            "set spec.promotion.prometheus.url so the promotion criteria can be evaluated.",
        )
    else:
        metrics = Condition(
            METRICS_AVAILABLE,
            "Unknown",
            "NotEvaluatedYet",
            f"promotion criteria have not been evaluated against {ds.spec.promotion.prometheus.url}"
            " yet.",
        )
    return [
        backups,
        metrics,
        Condition(
            PROMOTION_RECOMMENDED,
            "False",
            "NotEvaluatedYet",
            "no promotion criterion has been observed yet.",
        ),
        Condition(PROMOTED, "False", "ServingFromSQLite", "the data store is served from SQLite."),
    ]


def readiness(ds: Datastore, statefulset: Mapping[str, Any] | None, engine: str) -> Condition:
    """The Ready condition from the sidecar StatefulSet's observed status."""
    wanted = sidecar.replicas(ds, engine)
    selector = f"app.kubernetes.io/instance={ds.name},app.kubernetes.io/component=sidecar"
    if statefulset is None:
        return Condition(
            READY,
            "False",
            "StatefulSetMissing",
            f"the sidecar StatefulSet {ds.name!r} does not exist yet; the operator creates it"
            " on the next reconcile (see the Events of this Datastore).",
        )
    ready = int((statefulset.get("status") or {}).get("readyReplicas") or 0)
    if ready >= wanted:
        return Condition(
            READY,
            "True",
            "SidecarReady",
            f"{ready}/{wanted} sidecar pods ready; serving at {sidecar.endpoint(ds)}.",
        )
    return Condition(
        READY,
        "False",
        "SidecarNotReady",
        f"{ready}/{wanted} sidecar pods ready; check `kubectl -n {ds.namespace} get pods -l"
        f" {selector}` and the pods' events.",
    )


def phase_for(ready: Condition, previous_phase: str | None) -> str:
    """Ready, or Provisioning until it first was, then Degraded when it stops being ready."""
    if ready.status == "True":
        return "Ready"
    if previous_phase in ("Ready", "Degraded"):
        return "Degraded"
    return "Provisioning"


def invalid(previous: Mapping[str, Any] | None, generation: int, problems: str) -> dict[str, Any]:
    """The status of a Datastore whose spec cannot be built: no crash loop, a readable reason."""
    message = f"the spec is invalid: {problems}. Fix the spec; the operator retries on change."
    return register_phase(
        previous,
        generation=generation,
        phase="Invalid",
        reason="InvalidSpec",
        message=message,
        conditions=[Condition(READY, "False", "InvalidSpec", message)],
    )
