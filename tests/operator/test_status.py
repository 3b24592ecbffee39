"""The status helper: phases, conditions and their transition times."""

from __future__ import annotations

from typing import Any

from liteshift.operator import status
from liteshift.operator.model import Datastore
from liteshift.operator.status import Condition


def ds(spec: dict[str, Any] | None = None) -> Datastore:
    return Datastore.parse({"metadata": {"name": "shop", "namespace": "apps"}, "spec": spec or {}})


def test_transition_time_moves_only_when_the_status_flips() -> None:
    first = status.register_phase(
        None,
        generation=1,
        phase="Provisioning",
        reason="SidecarNotReady",
        message="0/1",
        conditions=[Condition("Ready", "False", "SidecarNotReady", "0/1")],
        now="2026-01-01T00:00:00Z",
    )
    same = status.register_phase(
        first,
        generation=2,
        phase="Provisioning",
        reason="SidecarNotReady",
        message="still 0/1",
        conditions=[Condition("Ready", "False", "SidecarNotReady", "still 0/1")],
        now="2026-01-01T00:05:00Z",
    )
    flipped = status.register_phase(
        same,
        generation=2,
        phase="Ready",
        reason="SidecarReady",
        message="1/1",
        conditions=[Condition("Ready", "True", "SidecarReady", "1/1")],
        now="2026-01-01T00:09:00Z",
    )
    assert same["conditions"] == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "SidecarNotReady",
            "message": "still 0/1",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 2,
        }
    ]
    assert flipped["conditions"][0]["lastTransitionTime"] == "2026-01-01T00:09:00Z"
    assert flipped["observedGeneration"] == 2
    assert flipped["phase"] == "Ready"


def test_defaults_fill_only_missing_conditions_and_others_are_kept() -> None:
    earlier = {
        "conditions": [
            {
                "type": "BackupsHealthy",
                "status": "True",
                "reason": "LastBackupSucceeded",
                "message": "ok",
                "lastTransitionTime": "t0",
            },
        ]
    }
    fresh = status.register_phase(
        earlier,
        generation=1,
        phase="Provisioning",
        reason="x",
        message="x",
        conditions=[status.readiness(ds(), None, "sqlite")],
        defaults=status.initial_conditions(ds()),
        now="t1",
    )
    by_type = {c["type"]: c for c in fresh["conditions"]}
    assert list(by_type) == list(status.CONDITION_TYPES)
    assert by_type["BackupsHealthy"]["reason"] == "LastBackupSucceeded"  # not overwritten
    assert by_type["Ready"]["reason"] == "StatefulSetMissing"
    assert by_type["MetricsAvailable"]["reason"] == "NoPrometheusConfigured"
    assert by_type["Promoted"]["status"] == "False"


def test_initial_conditions_explain_what_to_do() -> None:
    spec = {"promotion": {"policy": "off"}, "backup": {"enabled": False}}
    off = {c.type: c for c in status.initial_conditions(ds(spec))}
    assert off["MetricsAvailable"].reason == "PromotionOff"
    assert off["BackupsHealthy"].reason == "BackupsDisabled"
    assert "enable backups" in off["BackupsHealthy"].message


def test_readiness_and_phase() -> None:
    store = ds()
    not_ready = status.readiness(store, {"status": {"readyReplicas": 0}}, "sqlite")
    ready = status.readiness(store, {"status": {"readyReplicas": 1}}, "sqlite")
    assert not_ready.status == "False"
    assert "kubectl -n apps get pods" in not_ready.message
    assert ready.status == "True"
    assert status.phase_for(not_ready, None) == "Provisioning"
    assert status.phase_for(ready, "Provisioning") == "Ready"
    assert status.phase_for(not_ready, "Ready") == "Degraded"
    # Once promoted, all the asked-for replicas must be ready.
    three = ds({"replicas": 3, "postgres": {"mode": "managed"}})
    assert status.readiness(three, {"status": {"readyReplicas": 1}}, "postgres").status == "False"


def test_invalid_status_is_readable() -> None:
    patch = status.invalid(None, 3, "spec.replicas: too many")
    assert patch["phase"] == "Invalid"
    assert patch["observedGeneration"] == 3
    (ready,) = patch["conditions"]
    assert ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("the spec is invalid: spec.replicas: too many.")
