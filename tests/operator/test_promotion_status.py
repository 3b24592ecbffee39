"""The operator's promotion decisions, pure: decisions from `criteria.evaluate` (without
Prometheus, where it needs none) and sidecar status documents shaped as GET /admin/promotion
answers them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from liteshift.operator.model import Datastore
from liteshift.operator.promotion_status import (
    ROLLBACK_ANNOTATION,
    apply_patch,
    conditions,
    conditions_differ,
    decision_changed,
    decision_notice,
    evaluate_step,
    mirror_step,
    needs_start,
    previous_for,
    progress_message,
    promotion_patch,
    provisioned_step,
    refuse_rollback,
    request_for,
    rollback_step,
    thresholds_for,
    waiting_step,
)
from liteshift.promotion import criteria
from liteshift.promotion.criteria import Action
from liteshift.promotion.state import PromotionStatus, State
from tests.crds.schema import validate

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def ds(spec: dict[str, Any] | None = None) -> Datastore:
    return Datastore.parse(
        {"metadata": {"name": "shop", "namespace": "apps", "uid": "u-1"}, "spec": spec or {}}
    )


def decide(spec: dict[str, Any], annotations: dict[str, str] | None = None,
           previous: criteria.Previous | None = None) -> criteria.Decision:  # fmt: skip
    store = ds(spec)
    return criteria.evaluate(
        criteria.Target("shop", "apps"),
        request_for(store, annotations or {}),
        thresholds_for(store),
        None,
        now=NOW,
        previous=previous,
    )


def doc(state: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "state": state,
        "target": "postgresql://liteshift:***@db:5432/liteshift",
        "phase": None,
        "progress": {"table": None, "done": 0, "total": 0},
        "catchup_passes": 0,
        "pending_changes": 0,
        "rows_copied": {},
        "write_pause_ms": None,
        "verification": None,
        "error": None,
        "started_at": (NOW + timedelta(seconds=5)).isoformat(),
        "finished_at": None,
    }
    return {**base, **fields}


def started() -> PromotionStatus:
    """An attempt that has just asked the sidecar to start."""
    step = evaluate_step(
        PromotionStatus(),
        decide({}, {"liteshift.io/promote": "now"}),
        thresholds_for(ds()),
        NOW,
    )
    return provisioned_step(step.status, "external", NOW).status


def fits_the_crd(promotion: dict[str, Any]) -> None:
    body = {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": "shop", "namespace": "apps"},
        "spec": {},
        "status": {"promotion": promotion},
    }
    assert validate("Datastore", body) == []


def test_the_annotation_starts_an_attempt_and_is_consumed() -> None:
    decision = decide({}, {"liteshift.io/promote": "now"})
    step = evaluate_step(PromotionStatus(), decision, thresholds_for(ds()), NOW)
    assert step.status.state is State.PROVISIONING
    assert (step.status.trigger, step.status.attempt) == ("annotation", 1)
    assert step.remove_annotations == ("liteshift.io/promote",)
    assert step.extras["cooldownUntil"] == "2026-11-23T12:30:00Z"  # the default 30m cooldown
    names = [c["name"] for c in step.extras["criteria"]]
    assert names == ["lockWaitP95", "writeLatencyP99", "busyErrors", "databaseSize",
                     "horizontalScale", "operationalNeeds"]  # fmt: skip
    assert [(n.type, n.reason) for n in step.notices] == [("Normal", "PromotionStarted")]
    assert "trigger annotation" in step.notices[0].message
    patch = promotion_patch({"state": "Idle"}, step.status, step.extras)
    fits_the_crd(apply_patch({"state": "Idle"}, patch))


def test_spec_engine_postgres_starts_without_the_annotation_to_remove() -> None:
    step = evaluate_step(PromotionStatus(), decide({"engine": "postgres"}), thresholds_for(ds()),
                         NOW)  # fmt: skip
    assert (step.status.state, step.status.trigger) == (State.PROVISIONING, "engine")
    assert step.remove_annotations == ()


def test_policy_off_never_starts_even_when_asked() -> None:
    decision = decide({"promotion": {"policy": "off"}, "engine": "postgres"},
                      {"liteshift.io/promote": "now"})  # fmt: skip
    step = evaluate_step(PromotionStatus(), decision, thresholds_for(ds()), NOW)
    assert step.status == PromotionStatus()
    assert step.notices == [] and step.remove_annotations == ()
    wanted = {c.type: c for c in conditions(step.status, decision)}
    assert (wanted["MetricsAvailable"].status, wanted["MetricsAvailable"].reason) == (
        "Unknown",
        "PolicyOff",
    )
    assert wanted["PromotionRecommended"].reason == "PolicyOff"


def test_no_prometheus_is_metrics_unavailable_without_a_warning() -> None:
    decision = decide({})
    assert decision.action is Action.NONE
    metrics = {c.type: c for c in conditions(PromotionStatus(), decision)}["MetricsAvailable"]
    assert (metrics.status, metrics.reason) == ("False", "NoPrometheus")
    # Running without Prometheus is a choice: no Event for it.
    assert not decision_changed(None, decision)
    assert decision_notice(decision).type == "Normal"


def test_the_cooldown_counts_from_the_last_start_or_rollback() -> None:
    rolled = PromotionStatus(
        state=State.ROLLED_BACK,
        started_at=NOW - timedelta(minutes=50),
        rolled_back_at=NOW - timedelta(minutes=10),
    )
    raw = {"criteria": [{"name": "lockWaitP95", "sustained": True},
                        {"name": "busyErrors", "sustained": False}]}  # fmt: skip
    previous = previous_for(raw, rolled)
    assert previous.decided_at == NOW - timedelta(minutes=10)
    assert previous.sustained == frozenset({"lockWaitP95"})
    # spec.engine postgres waits for the cooldown; the annotation does not.
    assert decide({"engine": "postgres"}, previous=previous).reason == "CoolingDown"
    assert decide({}, {"liteshift.io/promote": "now"}, previous).action is Action.PROMOTE


def test_provisioning_waits_with_one_event_per_reason() -> None:
    status = evaluate_step(
        PromotionStatus(), decide({"engine": "postgres"}), thresholds_for(ds()), NOW
    ).status
    first = waiting_step(status, "waiting: the Secret 'pg' does not exist")
    assert first.status.state is State.PROVISIONING
    assert [n.reason for n in first.notices] == ["WaitingForPostgres"]
    assert waiting_step(first.status, first.status.message).notices == []
    ready = provisioned_step(first.status, "external", NOW)
    assert (ready.status.state, ready.status.target) == (State.READINESS, "external")
    assert [n.reason for n in ready.notices] == ["ReadinessChecks"]


def test_the_mirror_walks_every_state_the_sidecar_passed() -> None:
    status = started()
    copying = mirror_step(
        status, doc("Copying", phase="copy", progress={"table": "messages", "done": 500,
                                                       "total": 2000}), NOW)  # fmt: skip
    assert copying.status.state is State.COPYING
    assert copying.status.message == "sidecar: Copying, phase copy, table messages 500/2000"
    assert [n.reason for n in copying.notices] == ["Copying"]
    # Two ticks later the sidecar has cut over already: every step in between is recorded.
    verification = {"tables": {"messages": {"rows": 2200, "ok": True},
                               "events": {"rows": 3, "ok": True}}}  # fmt: skip
    done = mirror_step(
        copying.status,
        doc("Promoted", catchup_passes=3, write_pause_ms=87.5, verification=verification,
            rows_copied={"messages": 2000, "events": 3}),
        NOW,
    )  # fmt: skip
    assert done.status.state is State.PROMOTED
    assert [n.reason for n in done.notices] == ["CatchingUp", "Verifying", "CuttingOver",
                                                "Promoted"]  # fmt: skip
    assert done.status.write_pause_seconds == 0.0875
    assert done.status.catch_up_passes == 3
    assert done.status.completed_at == NOW
    assert "write pause 87.5 ms" in done.notices[-1].message
    assert done.extras["rowsCopied"] == 2003
    assert done.extras["tables"] == [
        {"name": "events", "sqliteRows": 3, "postgresRows": 3, "verified": True},
        {"name": "messages", "sqliteRows": 2200, "postgresRows": 2200, "verified": True},
    ]
    assert done.extras["rollbackPoint"] == "/data/liteshift.db"
    promotion = apply_patch({}, promotion_patch({}, done.status, done.extras))
    assert promotion["writePauseSeconds"] == 0.0875
    assert "snapshotChangeSeq" not in promotion and "lastChangeSeq" not in promotion
    fits_the_crd(promotion)
    promoted = {c.type: c for c in conditions(done.status, None)}["Promoted"]
    assert (promoted.status, promoted.reason) == ("True", "ServingFromPostgres")


def test_a_sidecar_that_restarted_its_run_does_not_move_the_state_back() -> None:
    catching = mirror_step(started(), doc("CatchingUp", catchup_passes=2), NOW).status
    again = mirror_step(catching, doc("Copying", phase="copy"), NOW)
    assert again.status.state is State.CATCHING_UP
    assert again.notices == []
    assert again.status.message.startswith("sidecar: Copying")


def test_a_failed_run_rolls_back_with_its_reason() -> None:
    copying = mirror_step(started(), doc("Copying"), NOW).status
    failed = mirror_step(
        copying,
        doc("RolledBack", error={"error": "store_unavailable",
                                 "detail": "Postgres at db:5432 is unavailable"}),
        NOW,
    )  # fmt: skip
    assert failed.status.state is State.ROLLED_BACK
    assert failed.status.reason == "StoreUnavailable"
    assert (
        failed.status.message == "Postgres at db:5432 is unavailable; SQLite is still the primary"
    )
    assert [(n.type, n.reason) for n in failed.notices] == [("Warning", "RolledBack")]
    promoted = {c.type: c for c in conditions(failed.status, None)}["Promoted"]
    assert (promoted.status, promoted.reason) == ("False", "StoreUnavailable")
    assert "SQLite is still the primary" in promoted.message
    fits_the_crd(apply_patch({}, promotion_patch({}, failed.status, failed.extras)))


def test_when_the_sidecar_must_be_asked_again() -> None:
    status = started()
    assert needs_start(status, doc("Idle", started_at=None))
    assert not needs_start(status, doc("Copying"))
    older = (NOW - timedelta(minutes=5)).isoformat()
    assert needs_start(status, doc("RolledBack", started_at=older))  # an earlier attempt's
    assert not needs_start(status, doc("RolledBack"))  # this attempt's: record it


def test_rollback_request_and_refusal() -> None:
    copying = mirror_step(started(), doc("Copying"), NOW).status
    step = rollback_step(copying, NOW, "aborted by request")
    assert (step.status.state, step.status.reason) == (State.ROLLED_BACK, "RollbackRequested")
    assert ROLLBACK_ANNOTATION in step.status.message
    refused = refuse_rollback(PromotionStatus(state=State.PROMOTED), "manual procedure")
    assert refused.remove_annotations == (ROLLBACK_ANNOTATION,)
    assert [(n.type, n.reason) for n in refused.notices] == [("Warning", "RollbackRefused")]


def test_a_new_attempt_clears_the_last_ones_results() -> None:
    previous = {
        "state": "RolledBack",
        "reason": "VerificationFailed",
        "completedAt": "2026-11-23T10:00:00Z",
        "rolledBackAt": "2026-11-23T10:00:00Z",
        "writePauseSeconds": 0.5,
        "rowsCopied": 10,
        "tables": [{"name": "messages", "verified": False}],
    }
    status = PromotionStatus.from_status(previous)
    step = evaluate_step(status, decide({}, {"liteshift.io/promote": "now"}),
                         thresholds_for(ds()), NOW)  # fmt: skip
    merged = apply_patch(previous, promotion_patch(previous, step.status, step.extras))
    assert merged["state"] == "ProvisioningPostgres"
    assert merged["attempt"] == 1
    for gone in ("completedAt", "writePauseSeconds", "rowsCopied", "tables"):
        assert gone not in merged
    # The rollback's time stays: it is what the cooldown counts from.
    assert merged["rolledBackAt"] == "2026-11-23T10:00:00Z"


def test_conditions_are_rewritten_only_when_they_differ() -> None:
    wanted = conditions(started(), decide({}))
    live = [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message}
            for c in wanted]  # fmt: skip
    assert not conditions_differ(live, wanted)
    assert conditions_differ(live[1:], wanted)


def test_progress_message_names_passes_and_pending_changes() -> None:
    text = progress_message(doc("CatchingUp", phase="catchup", catchup_passes=4,
                                pending_changes=12))  # fmt: skip
    assert text == "sidecar: CatchingUp, phase catchup, 4 catch-up passes, 12 changes pending"
