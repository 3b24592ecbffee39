"""A DatastoreBackup that completes becomes its Datastore's `status.lastBackup`, without moving
or triggering the schedule; and backup status writes never undo conditions other handlers
wrote meanwhile. kopf for real against kmock, a real `liteshift serve` on loopback."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonpatch
import kopf
import pytest

from liteshift.backup import list_backups
from liteshift.operator import status
from liteshift.operator.handlers.backups import (
    Attempt,
    BackupSettings,
    manual_backup_status,
    newest_completed,
    schedule_status,
    write_status,
)
from liteshift.operator.model import Datastore
from tests.crds.schema import validate
from tests.operator.cluster import NAMESPACE, Cluster, wait_for
from tests.operator.handlers.test_backups import (
    BACKUPS_PATH,
    MANIFEST,
    Clock,
    condition,
    datastore,
    operator_with,
    sidecar_process,  # noqa: F401 - the fixture
    tokens_secret,
)
from tests.operator.sidecar_process import SidecarProcess


def _request_backup(cluster: Cluster, name: str, target: str = "shop") -> None:
    code, made = cluster.request(
        "POST",
        BACKUPS_PATH,
        {
            "apiVersion": "liteshift.io/v1alpha1",
            "kind": "DatastoreBackup",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"datastore": target},
        },
    )
    assert code < 300, made


def _completed(cluster: Cluster, name: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        code, body = cluster.request("GET", f"{BACKUPS_PATH}/{name}")
        return body if code == 200 and body.get("status", {}).get("phase") else None

    found = wait_for(done, timeout=30, message=f"DatastoreBackup {name}")
    assert found["status"]["phase"] == "Completed", found["status"]
    return dict(found["status"])


def _last_backup_is(cluster: Cluster, backup_name: str) -> dict[str, Any] | None:
    live = cluster.get("Datastore", "shop") or {}
    last = live.get("status", {}).get("lastBackup") or {}
    return live if last.get("name") == backup_name else None


def _on_disk(sidecar: SidecarProcess) -> list[str]:
    return sorted(e.name for e in list_backups(sidecar.backup_dir))


@pytest.mark.slow
def test_completed_backup_becomes_last_backup_and_leaves_the_schedule_alone(
    bare_cluster: Cluster,
    sidecar_process: SidecarProcess,  # noqa: F811
) -> None:
    cluster, clock = bare_cluster, Clock()
    settings = BackupSettings(clock=clock, sidecar_url=sidecar_process.url)
    sidecar_process.add_messages(2)
    cluster.create("Secret", tokens_secret("shop-tokens"))
    # Yearly: the operator's clock jumps a year to make it due, and the next fire time is
    # then weeks away even though that clock keeps running.
    # creationTimestamp anchors the schedule before any attempt (kmock does not set it).
    shop = datastore("shop", schedule="0 0 1 1 *")
    shop["metadata"]["creationTimestamp"] = status.now_rfc3339()
    cluster.create("Datastore", shop)
    with operator_with(cluster, settings):
        # One scheduled backup first: the schedule now has an anchor in status.
        clock.advance(timedelta(days=366))
        scheduled = wait_for(
            lambda: (
                (cluster.get("Datastore", "shop") or {})
                .get("status", {})
                .get("lastBackup", {})
                .get("name")
            ),
            timeout=30,
            message="the scheduled backup",
        )
        next_at = cluster.get("Datastore", "shop")["status"]["backups"]["nextScheduledAt"]  # type: ignore[index]

        _request_backup(cluster, "before-upgrade")
        made = _completed(cluster, "before-upgrade")
        try:
            live = wait_for(
                lambda: _last_backup_is(cluster, made["backupName"]), timeout=30, message="recorded"
            )
        except AssertionError:
            raise AssertionError(f"{made}\n{cluster.get('Datastore', 'shop')}") from None
        last = live["status"]["lastBackup"]
        assert last == {
            "name": made["backupName"],
            "trigger": "manual",
            "engine": "sqlite",
            "succeeded": True,
            "startedAt": made["startedAt"],
            "completedAt": made["completedAt"],
            "sizeBytes": made["sizeBytes"],
            "sha256": made["sha256"],
            "location": made["location"],
            "message": f"DatastoreBackup before-upgrade: {made['message']}",
        }
        book = live["status"]["backups"]
        assert book["lastSuccessfulAt"] == made["completedAt"]
        assert book["nextScheduledAt"] == next_at  # the schedule did not move
        healthy = condition(live, "BackupsHealthy")
        assert (healthy["status"], healthy["reason"]) == ("True", "BackupSucceeded")
        assert made["backupName"] in healthy["message"]
        assert validate("Datastore", live) == []

    # A restarted operator remembers nothing: with lastBackup now a manual one, the schedule
    # must come from status (backups.nextScheduledAt), not from the creation anchor, by
    # which a backup would be due at once. Several ticks take no backup.
    settings = BackupSettings(clock=clock, sidecar_url=sidecar_process.url)
    with operator_with(cluster, settings):
        time.sleep(5)
        assert _on_disk(sidecar_process) == sorted([scheduled, made["backupName"]])
        assert _last_backup_is(cluster, made["backupName"]) is not None

        # Its next fire time comes: a scheduled backup, recorded over the manual one.
        clock.advance(timedelta(days=366))
        live = wait_for(
            lambda: (
                found
                if (found := cluster.get("Datastore", "shop"))
                and found["status"]["lastBackup"].get("trigger") == "schedule"
                else None
            ),
            timeout=30,
            message="the next scheduled backup",
        )
        assert live["status"]["lastBackup"]["name"] not in (scheduled, made["backupName"])


@pytest.mark.slow
def test_backups_disabled_still_records_the_manual_backup(
    bare_cluster: Cluster,
    sidecar_process: SidecarProcess,  # noqa: F811
) -> None:
    cluster = bare_cluster
    settings = BackupSettings(sidecar_url=sidecar_process.url)
    cluster.create("Secret", tokens_secret("shop-tokens"))
    cluster.create("Datastore", datastore("shop", enabled=False))
    with operator_with(cluster, settings):
        wait_for(
            lambda: condition(cluster.get("Datastore", "shop"), "BackupsHealthy"),
            message="the initial conditions",
        )
        _request_backup(cluster, "by-hand")
        made = _completed(cluster, "by-hand")
        live = wait_for(
            lambda: _last_backup_is(cluster, made["backupName"]), timeout=30, message="recorded"
        )
        assert live["status"]["lastBackup"]["trigger"] == "manual"
        # No schedule: the condition keeps saying so rather than claiming a healthy schedule.
        assert condition(live, "BackupsHealthy")["reason"] == "BackupsDisabled"


# --- the pure parts ---------------------------------------------------------------------------

SHOP = Datastore.parse(datastore("shop", schedule="0 3 * * *"))
RECORD = {
    "object": "before-upgrade",
    "backupName": "shop-20260501T120000Z-def456",
    "engine": "sqlite",
    "startedAt": "2026-05-01T12:00:00Z",
    "completedAt": "2026-05-01T12:00:03Z",
    "sizeBytes": 4096,
    "sha256": "b" * 64,
    "location": "/backups/shop-20260501T120000Z-def456",
    "message": "verified by quick_check; stored at /backups/shop-20260501T120000Z-def456",
}
CREATED = datetime(2026, 4, 1, tzinfo=UTC)


def _scheduled(at: datetime) -> dict[str, Any]:
    attempt = Attempt(at, at + timedelta(seconds=2), manifest=MANIFEST, retained=1)
    return schedule_status({}, SHOP, attempt, BackupSettings())


def test_newer_manual_backup_replaces_last_backup() -> None:
    previous = _scheduled(datetime(2026, 5, 1, 3, 0, tzinfo=UTC))
    fresh = manual_backup_status(previous, SHOP, RECORD, CREATED)
    assert fresh is not None
    assert fresh["lastBackup"]["trigger"] == "manual"
    assert fresh["lastBackup"]["name"] == RECORD["backupName"]
    assert fresh["backups"]["lastSuccessfulAt"] == RECORD["completedAt"]
    assert fresh["backups"]["nextScheduledAt"] == previous["backups"]["nextScheduledAt"]
    [healthy] = fresh["conditions"]
    assert (healthy["status"], healthy["reason"]) == ("True", "BackupSucceeded")
    body = {**datastore("shop", schedule="0 3 * * *"), "status": {**previous, **fresh}}
    assert validate("Datastore", body) == []


def test_older_same_or_foreign_records_are_ignored() -> None:
    later = _scheduled(datetime(2026, 5, 1, 13, 0, tzinfo=UTC))
    assert manual_backup_status(later, SHOP, RECORD, CREATED) is None
    recorded = manual_backup_status({}, SHOP, RECORD, CREATED)
    assert recorded is not None
    assert manual_backup_status(recorded, SHOP, RECORD, CREATED) is None
    # A namesake Datastore deleted and created again after that backup: not its backup.
    assert manual_backup_status({}, SHOP, RECORD, datetime(2026, 6, 1, tzinfo=UTC)) is None


def test_newest_completed_picks_the_last_to_finish() -> None:
    older = {**RECORD, "object": "a", "completedAt": "2026-05-01T11:00:00Z"}
    undated = {**RECORD, "object": "b", "completedAt": None}
    assert newest_completed([older, RECORD, undated]) == RECORD
    assert newest_completed([undated]) is None
    assert newest_completed([]) is None


def test_backup_status_write_keeps_conditions_written_meanwhile() -> None:
    # The timer read the status before a backup that took a while; meanwhile the drift check
    # set Ready and the promotion set Promoted. The backup's write, applied the way kopf
    # applies it (on the freshest body), changes BackupsHealthy and nothing else.
    now = "2026-05-01T03:00:00Z"
    read = status.merge_conditions([], status.initial_conditions(SHOP), generation=1, now=now)
    meanwhile = status.merge_conditions(
        read,
        [
            status.Condition(status.READY, "True", "SidecarReady", "ready"),
            status.Condition(status.PROMOTED, "True", "Promoted", "on Postgres"),
        ],
        generation=1,
        now="2026-05-01T03:00:05Z",
    )
    freshest: dict[str, Any] = {
        **datastore("shop"),
        "status": {"phase": "Ready", "conditions": meanwhile},
    }
    attempt = Attempt(
        datetime(2026, 5, 1, 3, 0, tzinfo=UTC),
        datetime(2026, 5, 1, 3, 0, 9, tzinfo=UTC),
        manifest=MANIFEST,
        retained=1,
    )
    patch = kopf.Patch(body=kopf.Body(copy.deepcopy(freshest)))  # type: ignore[arg-type]
    write_status(
        patch,
        {"conditions": read},
        schedule_status({"conditions": read}, SHOP, attempt, BackupSettings()),
    )
    ops = patch.as_json_patch(kopf.Body(copy.deepcopy(freshest)))  # type: ignore[arg-type]
    after = jsonpatch.apply_patch(freshest, ops)
    by_type = {c["type"]: c for c in after["status"]["conditions"]}
    assert by_type["Ready"]["reason"] == "SidecarReady"
    assert by_type["Promoted"]["status"] == "True"
    assert (by_type["BackupsHealthy"]["status"], by_type["BackupsHealthy"]["reason"]) == (
        "True",
        "BackupSucceeded",
    )
    assert after["status"]["lastBackup"]["name"] == MANIFEST["id"]
    assert after["status"]["phase"] == "Ready"


def test_a_default_never_overwrites_a_condition_written_meanwhile() -> None:
    # The reconcile handler fills BackupsHealthy with its default (NoBackupYet) when its copy
    # has none; if the backup timer wrote one in between, the default must not replace it.
    written = status.merge_conditions(
        [], status.initial_conditions(SHOP), generation=1, now="2026-05-01T03:00:00Z"
    )
    apply = status.status_writer({}, {"conditions": written})
    body: dict[str, Any] = {
        "status": {
            "conditions": [
                {"type": "BackupsHealthy", "status": "True", "reason": "BackupSucceeded"}
            ]
        }
    }
    apply(body)
    by_type = {c["type"]: c for c in body["status"]["conditions"]}
    assert by_type["BackupsHealthy"]["reason"] == "BackupSucceeded"
    assert set(by_type) == {c["type"] for c in written}


def test_fields_merge_like_a_merge_patch() -> None:
    # Nested objects merge (what kopf's merge patch did before): a field another handler
    # wrote meanwhile inside the same object survives; None deletes.
    read = {"phase": "Provisioning", "reason": "x"}
    apply = status.status_writer(read, {"phase": "Ready", "promotion": {"state": "Idle"},
                                        "reason": None})  # fmt: skip
    body: dict[str, Any] = {
        "status": {"phase": "Provisioning", "reason": "x", "promotion": {"attempt": 2}}
    }
    apply(body)
    assert body["status"] == {
        "phase": "Ready",
        "promotion": {"attempt": 2, "state": "Idle"},
        "conditions": [],
    }


def test_a_field_the_writer_left_unchanged_is_not_written_back() -> None:
    # The drift check read engine "sqlite" and writes it back unchanged; the promotion timer
    # set "postgres" meanwhile. The stale copy must not flip the Datastore back.
    read = {"engine": "sqlite", "phase": "Ready"}
    apply = status.status_writer(read, {"engine": "sqlite", "phase": "Degraded"})
    body: dict[str, Any] = {"status": {"engine": "postgres", "phase": "Ready"}}
    apply(body)
    assert body["status"]["engine"] == "postgres"
    assert body["status"]["phase"] == "Degraded"
