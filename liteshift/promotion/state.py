"""The promotion state machine, as pure transitions over the fields kept in `status.promotion`.

`transition(status, event, now)` returns the next `PromotionStatus`; `next_step(status)` says
what the operator must (re)do in that state. Both depend only on the persisted fields, so an
operator restarted at any point reads `status.promotion` (`PromotionStatus.from_status`),
calls `next_step`, and repeats that step — every step is idempotent (docs/promotion.md).

    Idle → Recommended → ProvisioningPostgres → ReadinessChecks → Copying → CatchingUp
         → Verifying → CuttingOver → Promoted,   or → RolledBack(reason) before cutover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from liteshift.promotion.criteria import Action, Decision
from liteshift.promotion.errors import InvalidPromotionTransition

#: A catch-up pass that leaves at most this many changed keys ends the catch-up: the rest is
#: small enough for the final write pause.
SMALL_DELTA_KEYS = 1000


class State(StrEnum):
    IDLE = "Idle"
    RECOMMENDED = "Recommended"
    PROVISIONING = "ProvisioningPostgres"
    READINESS = "ReadinessChecks"
    COPYING = "Copying"
    CATCHING_UP = "CatchingUp"
    VERIFYING = "Verifying"
    CUTTING_OVER = "CuttingOver"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"


#: States in which data is moving: a failure or a rollback request returns to SQLite.
IN_FLIGHT = frozenset(
    {State.PROVISIONING, State.READINESS, State.COPYING, State.CATCHING_UP, State.VERIFYING}
)


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluated:
    """A criteria evaluation (`criteria.evaluate`)."""

    decision: Decision


@dataclass(frozen=True)
class PostgresReady:
    target: str  # "managed" or "external"


@dataclass(frozen=True)
class ReadinessPassed:
    pass


@dataclass(frozen=True)
class CopyDone:
    #: The change-log position recorded inside the snapshot the copy read.
    snapshot_change_seq: int


@dataclass(frozen=True)
class CatchUpPass:
    last_change_seq: int
    remaining_keys: int


@dataclass(frozen=True)
class Verified:
    write_pause_seconds: float


@dataclass(frozen=True)
class CutOver:
    pass


@dataclass(frozen=True)
class RollbackRequested:
    """`liteshift.io/rollback=now`."""

    message: str = "rollback requested with liteshift.io/rollback=now"


@dataclass(frozen=True)
class StepFailed:
    """A step failed: readiness, Postgres gone during the copy, checksums differ, …"""

    reason: str  # CamelCase, e.g. ReadinessFailed, PostgresUnavailable, VerificationFailed
    message: str


Event = (
    Evaluated
    | PostgresReady
    | ReadinessPassed
    | CopyDone
    | CatchUpPass
    | Verified
    | CutOver
    | RollbackRequested
    | StepFailed
)


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionStatus:
    """Everything `status.promotion` keeps; enough to resume after any crash."""

    state: State = State.IDLE
    reason: str = ""
    message: str = ""
    target: str | None = None
    trigger: str | None = None
    attempt: int = 0
    state_entered_at: datetime | None = None
    recommended_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    rolled_back_at: datetime | None = None
    snapshot_change_seq: int | None = None
    last_change_seq: int | None = None
    catch_up_passes: int = 0
    write_pause_seconds: float | None = None

    def to_status(self) -> dict[str, Any]:
        """camelCase fields for `status.promotion`; unset fields left out."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == "":
                continue
            if isinstance(value, datetime):
                value = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
            elif isinstance(value, State):
                value = value.value
            out[_camel(f.name)] = value
        return out

    @classmethod
    def from_status(cls, raw: Mapping[str, Any] | None) -> PromotionStatus:
        """Read `status.promotion` back (unknown keys ignored; an absent status is Idle)."""
        if not raw:
            return cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = _camel(f.name)
            if key not in raw or raw[key] is None:
                continue
            value = raw[key]
            if f.name == "state":
                value = State(value)
            elif f.name.endswith("_at"):
                value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            values[f.name] = value
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


# --- transitions ----------------------------------------------------------------------------


def transition(status: PromotionStatus, event: Event, now: datetime) -> PromotionStatus:
    """The status after `event`; raises InvalidPromotionTransition when it does not apply."""
    state = status.state

    def enter(new: State, **changes: Any) -> PromotionStatus:
        return replace(status, state=new, state_entered_at=now, **changes)

    def invalid(detail: str = "") -> InvalidPromotionTransition:
        return InvalidPromotionTransition(state.value, type(event).__name__, detail)

    if isinstance(event, Evaluated):
        decision = event.decision
        if state in (State.IDLE, State.RECOMMENDED, State.ROLLED_BACK):
            if decision.action is Action.PROMOTE:
                return enter(
                    State.PROVISIONING,
                    reason=decision.reason,
                    message=decision.message,
                    trigger=decision.trigger,
                    attempt=status.attempt + 1,
                    started_at=now,
                    completed_at=None,
                    snapshot_change_seq=None,
                    last_change_seq=None,
                    catch_up_passes=0,
                    write_pause_seconds=None,
                )
            if decision.action is Action.RECOMMEND:
                if state is State.RECOMMENDED:
                    return replace(status, message=decision.message)
                return enter(
                    State.RECOMMENDED,
                    reason=decision.reason,
                    message=decision.message,
                    trigger=decision.trigger,
                    recommended_at=now,
                )
            if state is State.RECOMMENDED:
                return enter(State.IDLE, reason=decision.reason, message=decision.message)
            return status
        return status  # a running or finished promotion ignores new evaluations

    if isinstance(event, RollbackRequested | StepFailed):
        if state in IN_FLIGHT or (isinstance(event, StepFailed) and state is State.CUTTING_OVER):
            reason = event.reason if isinstance(event, StepFailed) else "RollbackRequested"
            return enter(
                State.ROLLED_BACK, reason=reason, message=event.message, rolled_back_at=now
            )
        if state is State.PROMOTED:
            raise invalid("after cutover, rollback is the manual procedure in docs/promotion.md")
        if state is State.CUTTING_OVER:
            raise invalid("the cutover is in progress; it either completes or fails back")
        return status  # nothing in flight: a rollback request is a no-op

    expected: dict[type, State] = {
        PostgresReady: State.PROVISIONING,
        ReadinessPassed: State.READINESS,
        CopyDone: State.COPYING,
        CatchUpPass: State.CATCHING_UP,
        Verified: State.VERIFYING,
        CutOver: State.CUTTING_OVER,
    }
    if state is not expected[type(event)]:
        raise invalid(f"it belongs to {expected[type(event)].value}")
    if isinstance(event, PostgresReady):
        return enter(State.READINESS, target=event.target, message="Postgres answers")
    if isinstance(event, ReadinessPassed):
        return enter(State.COPYING, message="readiness checks passed")
    if isinstance(event, CopyDone):
        return enter(
            State.CATCHING_UP,
            snapshot_change_seq=event.snapshot_change_seq,
            last_change_seq=event.snapshot_change_seq,
            message="snapshot copied",
        )
    if isinstance(event, CatchUpPass):
        if status.last_change_seq is not None and event.last_change_seq < status.last_change_seq:
            raise invalid("the change log cannot go backwards")
        caught_up = replace(
            status,
            last_change_seq=event.last_change_seq,
            catch_up_passes=status.catch_up_passes + 1,
            message=f"{event.remaining_keys} changed keys left",
        )
        if event.remaining_keys <= SMALL_DELTA_KEYS:
            return replace(caught_up, state=State.VERIFYING, state_entered_at=now)
        return caught_up
    if isinstance(event, Verified):
        return enter(
            State.CUTTING_OVER,
            write_pause_seconds=event.write_pause_seconds,
            message="row counts and checksums equal",
        )
    return enter(
        State.PROMOTED, completed_at=now, reason="Promoted", message="serving from Postgres"
    )


#: What the operator does in each state; repeating it after a crash is safe.
STEPS: dict[State, str | None] = {
    State.IDLE: None,
    State.RECOMMENDED: None,
    State.PROVISIONING: "provision_postgres",
    State.READINESS: "check_readiness",
    State.COPYING: "copy_snapshot",
    State.CATCHING_UP: "catch_up",
    State.VERIFYING: "pause_and_verify",
    State.CUTTING_OVER: "cut_over",
    State.PROMOTED: None,
    State.ROLLED_BACK: None,
}


def next_step(status: PromotionStatus) -> str | None:
    """The idempotent step to run (again) in `status.state`, or None when nothing runs."""
    return STEPS[status.state]
