"""The promotion state machine: pure transitions, persisted fields, resumable at every state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from liteshift.promotion.criteria import Action, Decision
from liteshift.promotion.errors import InvalidPromotionTransition
from liteshift.promotion.state import (
    CatchUpPass,
    CopyDone,
    CutOver,
    Evaluated,
    Event,
    PostgresReady,
    PromotionStatus,
    ReadinessPassed,
    RollbackRequested,
    State,
    StepFailed,
    Verified,
    next_step,
    transition,
)

T0 = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def decision(action: Action) -> Decision:
    trigger = None if action is Action.NONE else "criteria"
    return Decision(action, trigger, "R", "m", (), True, "QueriesAnswered", "", T0)


def run(status: PromotionStatus, *events: Event) -> PromotionStatus:
    for i, event in enumerate(events):
        status = transition(status, event, T0 + timedelta(seconds=i + 1))
        # Every intermediate status survives a write to status.promotion and a restart.
        resumed = PromotionStatus.from_status(status.to_status())
        assert resumed == status
        assert next_step(resumed) == next_step(status)
    return status


HAPPY = (
    Evaluated(decision(Action.RECOMMEND)),
    Evaluated(decision(Action.PROMOTE)),
    PostgresReady("managed"),
    ReadinessPassed(),
    CopyDone(snapshot_change_seq=100),
    CatchUpPass(last_change_seq=5000, remaining_keys=4000),
    CatchUpPass(last_change_seq=5400, remaining_keys=12),
    Verified(write_pause_seconds=0.08),
    CutOver(),
)


def test_happy_path_to_promoted() -> None:
    seen = [State.IDLE]
    status = PromotionStatus()
    for event in HAPPY:
        status = run(status, event)
        seen.append(status.state)
    assert seen == [
        State.IDLE,
        State.RECOMMENDED,
        State.PROVISIONING,
        State.READINESS,
        State.COPYING,
        State.CATCHING_UP,
        State.CATCHING_UP,
        State.VERIFYING,
        State.CUTTING_OVER,
        State.PROMOTED,
    ]
    assert status.attempt == 1 and status.trigger == "criteria" and status.target == "managed"
    assert status.snapshot_change_seq == 100 and status.last_change_seq == 5400
    assert status.catch_up_passes == 2 and status.write_pause_seconds == 0.08
    assert status.completed_at is not None and next_step(status) is None
    raw = status.to_status()
    assert raw["state"] == "Promoted" and raw["writePauseSeconds"] == 0.08
    assert raw["startedAt"].endswith("Z")


@pytest.mark.parametrize("stop", range(2, 8))
def test_a_failure_in_any_in_flight_state_rolls_back(stop: int) -> None:
    status = run(PromotionStatus(), *HAPPY[:stop])
    assert status.state in {
        State.PROVISIONING,
        State.READINESS,
        State.COPYING,
        State.CATCHING_UP,
        State.VERIFYING,
    }
    failed = run(status, StepFailed("PostgresUnavailable", "Postgres stopped answering"))
    assert failed.state is State.ROLLED_BACK
    assert failed.reason == "PostgresUnavailable" and failed.rolled_back_at is not None
    requested = run(status, RollbackRequested())
    assert requested.state is State.ROLLED_BACK and requested.reason == "RollbackRequested"


def test_each_state_names_the_step_to_resume() -> None:
    steps = []
    status = PromotionStatus()
    for event in HAPPY:
        status = transition(status, event, T0)
        steps.append(next_step(PromotionStatus.from_status(status.to_status())))
    assert steps == [
        None,
        "provision_postgres",
        "check_readiness",
        "copy_snapshot",
        "catch_up",
        "catch_up",
        "pause_and_verify",
        "cut_over",
        None,
    ]


def test_after_cutover_rollback_is_manual_and_evaluations_are_ignored() -> None:
    promoted = run(PromotionStatus(), *HAPPY)
    with pytest.raises(InvalidPromotionTransition, match="manual procedure"):
        transition(promoted, RollbackRequested(), T0)
    assert transition(promoted, Evaluated(decision(Action.PROMOTE)), T0) == promoted
    cutting = run(PromotionStatus(), *HAPPY[:-1])
    with pytest.raises(InvalidPromotionTransition, match="cutover is in progress"):
        transition(cutting, RollbackRequested(), T0)
    assert transition(cutting, StepFailed("CutoverFailed", "x"), T0).state is State.ROLLED_BACK


def test_recommendation_lapses_and_a_rolled_back_promotion_can_retry() -> None:
    recommended = run(PromotionStatus(), Evaluated(decision(Action.RECOMMEND)))
    assert run(recommended, Evaluated(decision(Action.NONE))).state is State.IDLE
    rolled = run(recommended, Evaluated(decision(Action.PROMOTE)), RollbackRequested())
    assert run(rolled, Evaluated(decision(Action.NONE))) == rolled
    retry = run(rolled, Evaluated(decision(Action.PROMOTE)))
    assert retry.state is State.PROVISIONING and retry.attempt == 2
    assert retry.snapshot_change_seq is None and retry.catch_up_passes == 0


def test_events_out_of_order_are_refused() -> None:
    with pytest.raises(InvalidPromotionTransition, match="belongs to Copying"):
        transition(PromotionStatus(), CopyDone(1), T0)
    catching = run(PromotionStatus(), *HAPPY[:5])
    with pytest.raises(InvalidPromotionTransition, match="backwards"):
        transition(catching, CatchUpPass(last_change_seq=50, remaining_keys=0), T0)
    assert transition(PromotionStatus(), RollbackRequested(), T0) == PromotionStatus()
    assert PromotionStatus.from_status(None) == PromotionStatus()
