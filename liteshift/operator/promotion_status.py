"""The operator's side of a promotion, as pure functions over `status.promotion`.

The promotion timer (handlers/promotion.py) does the I/O — Prometheus, the Kubernetes API, the
sidecar's `/admin/promotion` — and hands what it saw to these functions, which walk the state
machine of `liteshift.promotion.state` and say what to write and which Events to post:

- `evaluate_step`: a criteria `Decision` in Idle, Recommended or RolledBack;
- `mirror_step`: the sidecar's status document while the data moves (ReadinessChecks …
  CuttingOver): every state the sidecar went through since the last tick becomes one
  transition (and one Event), and its progress, catch-up passes, write pause, verification and
  error go into `status.promotion`;
- `rollback_step` / `provisioned_step`: the rollback annotation and a Postgres that answers;
- `promotion_patch`, `conditions`: the status patch and the conditions that explain it.

Nothing here reads a clock: the caller passes `now`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from liteshift.operator import status as status_
from liteshift.operator.model import Datastore
from liteshift.operator.specs.sidecar import SQLITE_PATH
from liteshift.promotion.criteria import PROMOTE_ANNOTATION, Action, Decision, Previous, Request
from liteshift.promotion.state import (
    IN_FLIGHT,
    CatchUpPass,
    CopyDone,
    CutOver,
    Evaluated,
    PostgresReady,
    PromotionStatus,
    ReadinessPassed,
    RollbackRequested,
    State,
    StepFailed,
    Verified,
    transition,
)
from liteshift.promotion.thresholds import Thresholds

ROLLBACK_ANNOTATION = "liteshift.io/rollback"


def _camel_key(name: str) -> str:
    """`state_entered_at` → `stateEnteredAt` (PromotionStatus.to_status's field names)."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


#: The states the sidecar runs (GET /admin/promotion names them the same), in order.
SIDECAR_STATES = (
    State.READINESS,
    State.COPYING,
    State.CATCHING_UP,
    State.VERIFYING,
    State.CUTTING_OVER,
    State.PROMOTED,
)
#: States in which the operator mirrors the sidecar's run (it has been asked to start).
MIRRORED = frozenset(SIDECAR_STATES) - {State.PROMOTED}

#: PromotionStatus fields the CRD has no place for (the sidecar keeps change-log positions
#: itself); a real API server would prune them, so they are never written.
_NOT_IN_CRD = ("snapshotChangeSeq", "lastChangeSeq")
_OWN_KEYS = tuple(
    key for key in (_camel_key(f.name) for f in fields(PromotionStatus)) if key not in _NOT_IN_CRD
)
#: status.promotion fields describing one attempt's data (cleared when a new one starts).
_ATTEMPT_KEYS = ("rowsCopied", "tables", "rollbackPoint")

_EVENT_REASONS = {
    State.IDLE: "PromotionNotRecommended",
    State.RECOMMENDED: "PromotionRecommended",
    State.PROVISIONING: "PromotionStarted",
    State.READINESS: "ReadinessChecks",
    State.COPYING: "Copying",
    State.CATCHING_UP: "CatchingUp",
    State.VERIFYING: "Verifying",
    State.CUTTING_OVER: "CuttingOver",
    State.PROMOTED: "Promoted",
    State.ROLLED_BACK: "RolledBack",
}


@dataclass(frozen=True)
class Notice:
    """A Kubernetes Event to post on the Datastore."""

    type: str  # "Normal" | "Warning"
    reason: str
    message: str


@dataclass(frozen=True)
class Step:
    """The outcome of one tick's decision: the new status, what else goes into
    status.promotion, Events to post and annotations to remove."""

    status: PromotionStatus
    extras: dict[str, Any] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    remove_annotations: tuple[str, ...] = ()


# --- inputs ---------------------------------------------------------------------------------


def request_for(ds: Datastore, annotations: Mapping[str, str]) -> Request:
    """What the Datastore asks for, for `criteria.evaluate`."""
    return Request(
        policy=ds.spec.promotion.policy,
        replicas=ds.spec.replicas,
        engine=ds.spec.engine,
        annotations=dict(annotations),
    )


def thresholds_for(ds: Datastore) -> Thresholds:
    """`spec.promotion` as `Thresholds` (the model already checked its syntax)."""
    promotion = ds.spec.promotion
    t = promotion.thresholds
    return Thresholds.from_spec(
        {
            "window": promotion.window,
            "cooldown": promotion.cooldown,
            "thresholds": {
                "lockWaitP95Seconds": t.lock_wait_p95_seconds,
                "writeLatencyP99Seconds": t.write_latency_p99_seconds,
                "busyErrorsPerSecond": t.busy_errors_per_second,
                "databaseSize": t.database_size,
            },
        }
    )


def previous_for(raw: Mapping[str, Any], current: PromotionStatus) -> Previous:
    """Hysteresis and cooldown inputs from the last evaluation kept in status.promotion."""
    sustained = frozenset(
        str(item.get("name")) for item in raw.get("criteria") or [] if item.get("sustained")
    )
    moments = [t for t in (current.started_at, current.rolled_back_at) if t is not None]
    return Previous(sustained=sustained, decided_at=max(moments) if moments else None)


# --- steps ----------------------------------------------------------------------------------


def evaluate_step(
    current: PromotionStatus, decision: Decision, thresholds: Thresholds, now: datetime
) -> Step:
    """Idle, Recommended or RolledBack after a criteria evaluation."""
    new = transition(current, Evaluated(decision), now)
    extras: dict[str, Any] = {
        "criteria": [c.to_status() for c in decision.criteria],
        "lastEvaluatedAt": status_.now_rfc3339(decision.evaluated_at),
    }
    decided = [t for t in (new.started_at, new.rolled_back_at) if t is not None]
    if decided:
        until = max(decided) + timedelta(seconds=thresholds.cooldown_seconds)
        extras["cooldownUntil"] = status_.now_rfc3339(until)
    remove: tuple[str, ...] = ()
    if new.state is State.PROVISIONING:
        extras.update(dict.fromkeys(_ATTEMPT_KEYS))
        if decision.trigger == "annotation":
            # Consumed: left in place it would start the next attempt right after a rollback.
            remove = (PROMOTE_ANNOTATION,)
    notices = _transition_notices(current, [new], decision_detail=_observed(decision))
    return Step(new, extras, notices, remove)


def provisioned_step(current: PromotionStatus, target: str, now: datetime) -> Step:
    """ProvisioningPostgres → ReadinessChecks: the target Postgres answers."""
    new = transition(current, PostgresReady(target), now)
    new = replace(new, message=f"{target} Postgres is ready; asking the sidecar to start")
    return Step(new, notices=_transition_notices(current, [new]))


def waiting_step(current: PromotionStatus, why: str) -> Step:
    """Still in ProvisioningPostgres: say what is missing (an Event when it changes)."""
    if current.message == why:
        return Step(current)
    return Step(
        replace(current, message=why),
        notices=[Notice("Normal", "WaitingForPostgres", why)],
    )


def rollback_step(current: PromotionStatus, now: datetime, detail: str) -> Step:
    """`liteshift.io/rollback=now` honoured before the cutover (the sidecar aborted)."""
    new = transition(current, RollbackRequested(), now)
    new = replace(new, message=f"rollback requested with {ROLLBACK_ANNOTATION}=now; {detail}")
    return Step(new, notices=_transition_notices(current, [new]))


def refuse_rollback(current: PromotionStatus, why: str) -> Step:
    """A rollback request that cannot be honoured (promoted already): say so, once."""
    return Step(
        current,
        notices=[Notice("Warning", "RollbackRefused", why)],
        remove_annotations=(ROLLBACK_ANNOTATION,),
    )


def needs_start(current: PromotionStatus, doc: Mapping[str, Any]) -> bool:
    """Whether the sidecar must be asked (again) to run: it reports Idle (it restarted, or
    was never asked), or a RolledBack run older than this attempt."""
    state = doc.get("state")
    if state == State.IDLE.value:
        return True
    if state == State.ROLLED_BACK.value and current.started_at is not None:
        started = _parse_time(doc.get("started_at"))
        return started is None or started < current.started_at
    return False


def mirror_step(current: PromotionStatus, doc: Mapping[str, Any], now: datetime) -> Step:
    """Follow the sidecar's run: every state it passed since the last tick is a transition."""
    reported = str(doc.get("state") or "")
    chain: list[PromotionStatus] = []
    status = current
    if reported == State.ROLLED_BACK.value:
        error = doc.get("error") or {}
        reason = _camel(str(error.get("error") or "promotion_failed"))
        detail = str(error.get("detail") or "the sidecar rolled the promotion back")
        message = f"{detail}; SQLite is still the primary"
        if status.state in IN_FLIGHT or status.state is State.CUTTING_OVER:
            status = transition(status, StepFailed(reason, message), now)
            chain.append(status)
    elif reported in {s.value for s in SIDECAR_STATES}:
        goal = SIDECAR_STATES.index(State(reported))
        pause = _pause_seconds(doc)
        while status.state in MIRRORED and SIDECAR_STATES.index(status.state) < goal:
            status = transition(status, _forward(status.state, pause or 0.0), now)
            chain.append(status)
    pause = _pause_seconds(doc)
    status = replace(
        status,
        # The sidecar's count (a sidecar restarted mid-run counts its new run's passes).
        catch_up_passes=int(doc.get("catchup_passes") or 0),
        write_pause_seconds=pause if pause is not None else status.write_pause_seconds,
        snapshot_change_seq=None,
        last_change_seq=None,
    )
    if status.state in MIRRORED:
        status = replace(status, message=progress_message(doc))
    if chain:
        chain[-1] = status
    extras = _mirrored_extras(doc)
    if status.state is State.PROMOTED:
        extras["rollbackPoint"] = SQLITE_PATH
    return Step(status, extras, _transition_notices(current, chain))


def _forward(state: State, pause: float) -> Any:
    """The event that moves the operator's state one step along the sidecar's run."""
    if state is State.READINESS:
        return ReadinessPassed()
    if state is State.COPYING:
        # Change-log positions are the sidecar's business: the copy ended, that is all we know.
        return CopyDone(snapshot_change_seq=0)
    if state is State.CATCHING_UP:
        return CatchUpPass(last_change_seq=0, remaining_keys=0)
    if state is State.VERIFYING:
        return Verified(write_pause_seconds=pause)
    return CutOver()


def progress_message(doc: Mapping[str, Any]) -> str:
    """One line on where the sidecar's run is."""
    state = str(doc.get("state") or "?")
    progress = doc.get("progress") or {}
    table, done, total = progress.get("table"), progress.get("done"), progress.get("total")
    parts = [f"sidecar: {state}"]
    if doc.get("phase"):
        parts.append(f"phase {doc['phase']}")
    if table:
        parts.append(f"table {table} {done}/{total}")
    elif total:
        parts.append(f"{done}/{total}")
    if doc.get("catchup_passes"):
        parts.append(f"{doc['catchup_passes']} catch-up passes")
    if doc.get("pending_changes"):
        parts.append(f"{doc['pending_changes']} changes pending")
    return ", ".join(parts)


def _mirrored_extras(doc: Mapping[str, Any]) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    copied = doc.get("rows_copied") or {}
    if copied:
        extras["rowsCopied"] = sum(int(n) for n in copied.values())
    verification = (doc.get("verification") or {}).get("tables") or {}
    if verification:
        extras["tables"] = [
            {
                "name": name,
                "sqliteRows": int(result.get("rows") or 0),
                "postgresRows": int(result.get("rows") or 0),
                "verified": bool(result.get("ok")),
            }
            for name, result in sorted(verification.items())
        ]
    return extras


def _pause_seconds(doc: Mapping[str, Any]) -> float | None:
    value = doc.get("write_pause_ms")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value) / 1000)
    return None


# --- output ---------------------------------------------------------------------------------


def promotion_patch(
    previous: Mapping[str, Any], new: PromotionStatus, extras: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch of status.promotion: fields of `new`, fields it no longer has set to
    None (a merge patch keeps what it does not mention), then `extras`."""
    fresh = {k: v for k, v in new.to_status().items() if k not in _NOT_IN_CRD}
    cleared = {key: None for key in (*_OWN_KEYS, *_NOT_IN_CRD) if key in previous}
    return {**cleared, **fresh, **extras}


def apply_patch(previous: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """What status.promotion is after `patch` (as the API server merges it)."""
    merged = dict(previous)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def conditions(current: PromotionStatus, decision: Decision | None) -> list[status_.Condition]:
    """The conditions that explain the promotion: Promoted always, MetricsAvailable and
    PromotionRecommended from the last evaluation (when there was one)."""
    out: list[status_.Condition] = []
    state = current.state
    if state is State.PROMOTED:
        out.append(
            status_.Condition(
                status_.PROMOTED,
                "True",
                "ServingFromPostgres",
                "the data store is served from Postgres; the SQLite file is kept as the"
                " rollback point (docs/promotion.md, manual rollback)",
            )
        )
    elif state is State.ROLLED_BACK:
        out.append(
            status_.Condition(
                status_.PROMOTED,
                "False",
                current.reason or "RolledBack",
                f"promotion attempt {current.attempt} rolled back: {current.message}",
            )
        )
    elif state in IN_FLIGHT or state is State.CUTTING_OVER:
        out.append(
            status_.Condition(
                status_.PROMOTED,
                "False",
                "Promoting",
                f"promotion attempt {current.attempt} in state {state.value}; still serving"
                " from SQLite",
            )
        )
    if decision is not None:
        metrics = decision.metrics_condition()
        out.append(
            status_.Condition(
                metrics["type"], metrics["status"], metrics["reason"], metrics["message"]
            )
        )
        if state is State.RECOMMENDED:
            out.append(
                status_.Condition(
                    status_.PROMOTION_RECOMMENDED, "True", current.reason, current.message
                )
            )
        elif state in (State.IDLE, State.ROLLED_BACK):
            out.append(
                status_.Condition(
                    status_.PROMOTION_RECOMMENDED, "False", decision.reason, decision.message
                )
            )
    return out


def conditions_differ(
    live: Sequence[Mapping[str, Any]], wanted: Sequence[status_.Condition]
) -> bool:
    """Whether any wanted condition is missing or different in `live` (another status
    writer may have put back an older copy)."""
    by_type = {str(c.get("type")): c for c in live}
    return any(
        (
            by_type.get(w.type, {}).get("status"),
            by_type.get(w.type, {}).get("reason"),
            by_type.get(w.type, {}).get("message"),
        )
        != (w.status, w.reason, w.message)
        for w in wanted
    )


def decision_notice(decision: Decision) -> Notice:
    """The Event of an evaluation whose outcome changed."""
    kind = "Warning" if _metrics_broken(decision) else "Normal"
    return Notice(
        kind, "PromotionEvaluated", f"{decision.reason}: {decision.message}{_observed(decision)}"
    )


def _observed(decision: Decision) -> str:
    seen = [
        f"{c.name}={c.observed:g}" + (" (sustained)" if c.sustained else "")
        for c in decision.criteria
        if c.observed is not None and math.isfinite(c.observed) and c.query
    ]
    return f"; observed {', '.join(seen)}" if seen else ""


def _transition_notices(
    before: PromotionStatus, chain: list[PromotionStatus], decision_detail: str = ""
) -> list[Notice]:
    notices: list[Notice] = []
    state = before.state
    for status in chain:
        if status.state is state:
            continue
        state = status.state
        notices.append(_notice(status, decision_detail))
    return notices


def _notice(status: PromotionStatus, detail: str) -> Notice:
    state = status.state
    reason = _EVENT_REASONS[state]
    if state is State.ROLLED_BACK:
        return Notice(
            "Warning", reason, f"attempt {status.attempt}: {status.reason}: {status.message}"
        )
    if state is State.PROMOTED:
        pause = (
            "unknown"
            if status.write_pause_seconds is None
            else f"{status.write_pause_seconds * 1000:.1f} ms"
        )
        return Notice(
            "Normal",
            reason,
            f"attempt {status.attempt}: serving from Postgres; write pause {pause};"
            f" {status.catch_up_passes} catch-up passes; SQLite file {SQLITE_PATH} kept as"
            " the rollback point",
        )
    if state is State.PROVISIONING:
        return Notice(
            "Normal",
            reason,
            f"attempt {status.attempt} (trigger {status.trigger}): {status.message}{detail}",
        )
    if state in (State.RECOMMENDED, State.IDLE):
        return Notice("Normal", reason, f"{status.message}{detail}")
    return Notice("Normal", reason, f"attempt {status.attempt}: {status.message}")


def decision_changed(previous: Decision | None, decision: Decision) -> bool:
    """Whether an evaluation is worth an Event (its outcome or metrics availability moved)."""
    if previous is None:
        return decision.action is not Action.NONE or _metrics_broken(decision)
    return (previous.action, previous.reason, previous.metrics_available) != (
        decision.action,
        decision.reason,
        decision.metrics_available,
    )


def _metrics_broken(decision: Decision) -> bool:
    """Prometheus is configured but could not answer (no Prometheus at all is a choice)."""
    return decision.metrics_available is False and decision.metrics_reason != "NoPrometheus"


def _camel(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_") if part) or "PromotionFailed"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
