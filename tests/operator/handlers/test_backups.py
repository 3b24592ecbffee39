"""Backups end to end: kopf for real against kmock's emulator, calling a real `liteshift serve`
process on loopback (SQLite file and backup directory in tmp).

Time: the schedule runs on `BackupSettings.clock`, which these tests move forward instead of
sleeping a minute per backup; the timer itself ticks for real (every 2 s).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from liteshift.admin_client import SidecarRefused, SidecarUnreachable
from liteshift.backup import list_backups, verify_backup
from liteshift.operator.handlers.backups import (
    BACKUP_MEMO_KEY,
    AdminTokenMissing,
    Attempt,
    BackupSettings,
    Failure,
    backup_object_status,
    describe_failure,
    read_admin_token,
    schedule_status,
)
from liteshift.operator.kube import Kube
from liteshift.operator.model import Datastore
from tests.crds.schema import validate
from tests.operator.cluster import NAMESPACE, Cluster, running_operator, wait_for
from tests.operator.sidecar_process import ADMIN_TOKEN, API_TOKEN, SidecarProcess

BACKUPS_PATH = f"/apis/liteshift.io/v1alpha1/namespaces/{NAMESPACE}/datastorebackups"


class Clock:
    """The operator's clock: real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta


@pytest.fixture
def sidecar_process(tmp_path: Path) -> Iterator[SidecarProcess]:
    process = SidecarProcess(tmp_path, "shop", NAMESPACE)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@contextlib.contextmanager
def operator_with(cluster: Cluster, settings: BackupSettings) -> Iterator[None]:
    """The liteshift operator (every handler) with these backup settings in its memo."""
    backups: dict[str, Any] = {
        "kind": "DatastoreBackup",
        "namespaced": True,
        "subresources": {"status"},
        "verbs": {"get", "list", "watch", "create", "patch", "delete"},
    }
    resources: Any = cluster.emulator.resources
    resources["liteshift.io/v1alpha1/datastorebackups"] = backups

    # Runtime's own retry delay (15 s): these tests never see a refused reconcile retried.
    with running_operator(cluster.url, {BACKUP_MEMO_KEY: settings}, retry_delay=15.0):
        yield


def tokens_secret(name: str) -> dict[str, Any]:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"api-token": b64(API_TOKEN), "admin-token": b64(ADMIN_TOKEN)},
    }


def datastore(name: str, **backup: Any) -> dict[str, Any]:
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"auth": {"secretRef": {"name": f"{name}-tokens"}}, "backup": backup},
    }


def events(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.list("Event")
        if e.get("involvedObject", {}).get("name") == name and e.get("reason") == reason
    ]


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in (obj or {}).get("status", {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


@pytest.mark.slow
def test_schedule_backs_up_through_the_sidecar_applies_retention_and_reports_failure(
    bare_cluster: Cluster, sidecar_process: SidecarProcess
) -> None:
    cluster, clock = bare_cluster, Clock()
    settings = BackupSettings(clock=clock, sidecar_url=sidecar_process.url)
    sidecar_process.add_messages(3)
    cluster.create("Secret", tokens_secret("shop-tokens"))
    cluster.create(
        "Datastore",
        datastore("shop", schedule="* * * * *", compression="zstd", retention={"keepLast": 2}),
    )
    with operator_with(cluster, settings):
        wait_for(lambda: (cluster.get("Datastore", "shop") or {}).get("status", {}).get("phase"),
                 message="the Datastore reconciled")  # fmt: skip
        # Two timer ticks in the same minute: nothing is due yet.
        time.sleep(4.5)
        live = cluster.get("Datastore", "shop") or {}
        assert "lastBackup" not in live["status"]
        assert not sidecar_process.backup_dir.exists()

        names: list[str] = []
        for round_ in range(3):
            clock.advance(timedelta(seconds=61))
            live = wait_for(
                functools.partial(_new_backup, cluster, tuple(names)),
                timeout=30,
                message=f"scheduled backup {round_ + 1}",
            )
            last = live["status"]["lastBackup"]
            assert last["succeeded"] is True, last
            assert last["trigger"] == "schedule"
            assert last["engine"] == "sqlite"
            names.append(last["name"])
        on_disk = {e.name: e for e in list_backups(sidecar_process.backup_dir)}
        # keepLast 2 after three backups: the first is gone from the sidecar's disk.
        assert sorted(on_disk) == sorted(names[1:])
        newest = on_disk[names[-1]].manifest
        assert newest is not None
        assert newest.sha256 == last["sha256"]
        assert newest.size == last["sizeBytes"]
        assert newest.compression == "zstd"
        assert newest.row_counts["messages"] == 3
        verify_backup(sidecar_process.backup_dir / names[-1])
        assert last["location"] == f"/backups/{names[-1]}"
        book = live["status"]["backups"]
        assert book["retained"] == 2
        assert book["consecutiveFailures"] == 0
        assert book["lastSuccessfulAt"] == last["completedAt"]
        healthy = condition(live, "BackupsHealthy")
        assert (healthy["status"], healthy["reason"]) == ("True", "BackupSucceeded"), healthy
        assert names[-1] in healthy["message"]
        # kopf posts Events from a queue: they may land after the status patch.
        wait_for(lambda: len(events(cluster, "shop", "BackupSucceeded")) >= 3, message="events")
        pruned = wait_for(lambda: events(cluster, "shop", "BackupsPruned"), message="pruned")
        assert names[0] in pruned[0]["message"]

        # The sidecar goes away: the next scheduled backup fails, visibly.
        sidecar_process.stop()
        clock.advance(timedelta(seconds=61))
        live = wait_for(
            lambda: _failed(cluster.get("Datastore", "shop")), timeout=30, message="a failure"
        )
        last = live["status"]["lastBackup"]
        assert last["trigger"] == "schedule"
        assert "cannot reach the sidecar" in last["message"]
        unhealthy = condition(live, "BackupsHealthy")
        assert (unhealthy["status"], unhealthy["reason"]) == ("False", "SidecarUnreachable")
        assert sidecar_process.url in unhealthy["message"]
        assert "kubectl -n apps get pods" in unhealthy["message"]
        assert live["status"]["backups"]["consecutiveFailures"] == 1
        warnings = wait_for(lambda: events(cluster, "shop", "BackupFailed"), message="warning")
        assert warnings[0]["type"] == "Warning"

        # It comes back: the retry (due minutes later, not a day) succeeds and heals.
        sidecar_process.start()
        clock.advance(timedelta(seconds=61))
        live = wait_for(
            lambda: _healthy_again(cluster),
            timeout=30,
            message="healthy again",
        )
        assert live["status"]["backups"]["consecutiveFailures"] == 0


def _new_backup(cluster: Cluster, seen: tuple[str, ...]) -> dict[str, Any] | None:
    """The Datastore once its status shows a successful backup not in `seen` (the Event is
    posted during the handler, the status patch lands after it: wait for the status)."""
    live = cluster.get("Datastore", "shop")
    last = (live or {}).get("status", {}).get("lastBackup") or {}
    if last.get("succeeded") is True and last.get("name") not in seen:
        return live
    return None


def _failed(live: dict[str, Any] | None) -> dict[str, Any] | None:
    last = (live or {}).get("status", {}).get("lastBackup") or {}
    return live if last.get("succeeded") is False else None


def _healthy_again(cluster: Cluster) -> dict[str, Any] | None:
    live = cluster.get("Datastore", "shop")
    cond = condition(live, "BackupsHealthy")
    last = (live or {}).get("status", {}).get("lastBackup") or {}
    if cond.get("status") == "True" and last.get("succeeded") is True:
        return live
    return None


def test_datastore_backup_completes_with_the_manifest_or_fails_with_the_reason(
    bare_cluster: Cluster, sidecar_process: SidecarProcess
) -> None:
    cluster = bare_cluster
    settings = BackupSettings(
        sidecar_url=sidecar_process.url, on_demand_retries=1, on_demand_retry_delay=0.5
    )
    sidecar_process.add_messages(4)
    cluster.create("Secret", tokens_secret("shop-tokens"))
    # Schedule far away: only the DatastoreBackups take backups in this test.
    cluster.create("Datastore", datastore("shop", schedule="0 3 1 1 *"))
    with operator_with(cluster, settings):
        status, made = cluster.request(
            "POST",
            BACKUPS_PATH,
            {
                "apiVersion": "liteshift.io/v1alpha1",
                "kind": "DatastoreBackup",
                "metadata": {"name": "before-upgrade", "namespace": NAMESPACE},
                "spec": {"datastore": "shop", "verify": "full", "compression": "gzip"},
            },
        )
        assert status < 300, made
        done = wait_for(
            lambda: _backup_phase(cluster, "before-upgrade"), timeout=30, message="completed"
        )
        st = done["status"]
        assert st["phase"] == "Completed", st
        assert st["reason"] == "BackupCompleted"
        assert st["verified"] == "full"
        assert st["engine"] == "sqlite"
        assert st["rowCounts"]["messages"] == 4
        assert st["location"] == f"/backups/{st['backupName']}"
        entry = {e.name: e for e in list_backups(sidecar_process.backup_dir)}[st["backupName"]]
        assert entry.manifest is not None
        assert entry.manifest.sha256 == st["sha256"]
        assert entry.manifest.size == st["sizeBytes"]
        assert entry.manifest.compression == "gzip"
        assert entry.manifest.check == "integrity_check"
        assert st["schemaVersion"] == str(entry.manifest.schema_version)
        wait_for(lambda: events(cluster, "before-upgrade", "BackupCompleted"), message="event")

        # A backup of a Datastore that does not exist, and one whose sidecar is down.
        for name, target in (("typo", "shpo"), ("while-down", "shop")):
            if name == "while-down":
                sidecar_process.stop()
            status, made = cluster.request(
                "POST",
                BACKUPS_PATH,
                {
                    "apiVersion": "liteshift.io/v1alpha1",
                    "kind": "DatastoreBackup",
                    "metadata": {"name": name, "namespace": NAMESPACE},
                    "spec": {"datastore": target},
                },
            )
            assert status < 300, made
        typo = wait_for(lambda: _backup_phase(cluster, "typo"), timeout=30, message="typo")
        assert typo["status"]["phase"] == "Failed"
        assert typo["status"]["reason"] == "DatastoreNotFound"
        assert "'shpo'" in typo["status"]["message"]
        down = wait_for(lambda: _backup_phase(cluster, "while-down"), timeout=30, message="down")
        assert down["status"]["phase"] == "Failed"
        assert down["status"]["reason"] == "SidecarUnreachable"
        down_events = wait_for(lambda: events(cluster, "while-down", "BackupFailed"),
                               message="warning")  # fmt: skip
        assert down_events[0]["type"] == "Warning"
        # Nothing was added to the backup volume by the failures.
        assert [e.name for e in list_backups(sidecar_process.backup_dir)] == [st["backupName"]]


def _backup_phase(cluster: Cluster, name: str) -> dict[str, Any] | None:
    status, body = cluster.request("GET", f"{BACKUPS_PATH}/{name}")
    if status != 200:
        return None
    if (body.get("status") or {}).get("phase") in ("Completed", "Failed"):
        return dict(body)
    return None


# --- the pure parts and the token read, without kopf ----------------------------------------

MANIFEST = {
    "id": "shop-20260501T030000Z-abc123",
    "engine": "sqlite",
    "size": 8192,
    "sha256": "a" * 64,
    "check": "quick_check",
    "schema_version": 3,
    "row_counts": {"messages": 2},
}
SHOP = Datastore.parse(datastore("shop", schedule="0 3 * * *"))


def test_schedule_status_after_success_and_failure() -> None:
    settings = BackupSettings()
    started = datetime(2026, 5, 1, 3, 0, 0, tzinfo=UTC)
    ok = Attempt(started, started + timedelta(seconds=4), manifest=MANIFEST, retained=2)
    after_ok = schedule_status({"backups": {"consecutiveFailures": 2}}, SHOP, ok, settings)
    assert after_ok["lastBackup"] == {
        "name": MANIFEST["id"],
        "trigger": "schedule",
        "engine": "sqlite",
        "succeeded": True,
        "startedAt": "2026-05-01T03:00:00Z",
        "completedAt": "2026-05-01T03:00:04Z",
        "sizeBytes": 8192,
        "sha256": "a" * 64,
        "location": f"/backups/{MANIFEST['id']}",
        "message": "verified by quick_check",
    }
    assert after_ok["backups"] == {
        "consecutiveFailures": 0,
        "lastSuccessfulAt": "2026-05-01T03:00:04Z",
        "retained": 2,
        "nextScheduledAt": "2026-05-02T03:00:00Z",
    }
    [healthy] = after_ok["conditions"]
    assert (healthy["type"], healthy["status"], healthy["reason"]) == (
        "BackupsHealthy", "True", "BackupSucceeded")  # fmt: skip

    failure = describe_failure(SidecarUnreachable("http://x:8080", "connection refused"), SHOP,
                               "http://x:8080")  # fmt: skip
    failed = Attempt(started, started + timedelta(seconds=1), failure=failure)
    after_failure = schedule_status(after_ok, SHOP, failed, settings)
    assert after_failure["lastBackup"]["succeeded"] is False
    assert after_failure["backups"]["consecutiveFailures"] == 1
    assert after_failure["backups"]["lastSuccessfulAt"] == "2026-05-01T03:00:04Z"
    # Retried five minutes later, not at tomorrow's fire time.
    assert after_failure["backups"]["nextScheduledAt"] == "2026-05-01T03:05:00Z"
    [unhealthy] = after_failure["conditions"]
    assert (unhealthy["status"], unhealthy["reason"]) == ("False", "SidecarUnreachable")
    assert unhealthy["lastTransitionTime"] == "2026-05-01T03:00:01Z"


def test_failures_say_what_to_do() -> None:
    url = "http://shop.apps.svc:8080"
    cases = {
        SidecarRefused(url, 403, "forbidden", "this route needs the admin token"): (
            "AdminTokenRejected", "restart the sidecar"),
        SidecarRefused(url, 500, "integrity_check_failed", "quick_check failed: page 3"): (
            "BackupFailed", "quick_check failed: page 3"),
        AdminTokenMissing("the auth Secret 'shop-tokens' does not exist"): (
            "AdminTokenMissing", "'shop-tokens' does not exist"),
    }  # fmt: skip
    for exc, (reason, text) in cases.items():
        failure = describe_failure(exc, SHOP, url)
        assert failure.reason == reason
        assert text in failure.message


def test_backup_object_status_records_the_manifest() -> None:
    started = datetime(2026, 5, 1, 3, 0, 0, tzinfo=UTC)
    done = backup_object_status(
        Attempt(started, started, manifest=MANIFEST), verify="quick", generation=1
    )
    assert done["phase"] == "Completed"
    assert done["schemaVersion"] == "3"
    assert done["rowCounts"] == {"messages": 2}
    assert done["verified"] == "quick"
    failed = backup_object_status(
        Attempt(started, started, failure=Failure("BackupFailed", "disk full")),
        verify="quick",
        generation=1,
    )
    assert (failed["phase"], failed["reason"], failed["message"]) == (
        "Failed", "BackupFailed", "disk full")  # fmt: skip


def test_admin_token_is_read_from_the_secret_data(bare_cluster: Cluster) -> None:
    kube = Kube.from_url(bare_cluster.url)
    try:
        with pytest.raises(AdminTokenMissing, match="'shop-tokens' does not exist"):
            read_admin_token(kube, SHOP)
        secret = tokens_secret("shop-tokens")
        del secret["data"]["admin-token"]
        bare_cluster.create("Secret", secret)
        with pytest.raises(AdminTokenMissing, match="has no key 'admin-token'"):
            read_admin_token(kube, SHOP)
        bare_cluster.delete("Secret", "shop-tokens")
        bare_cluster.create("Secret", tokens_secret("shop-tokens"))
        assert read_admin_token(kube, SHOP) == ADMIN_TOKEN
    finally:
        kube.close()


def test_status_patches_fit_the_crds() -> None:
    # Unknown status fields would be pruned by a real API server (strict validation here).
    started = datetime(2026, 5, 1, 3, 0, 0, tzinfo=UTC)
    settings = BackupSettings()
    failure = Failure("SidecarUnreachable", "cannot reach the sidecar")
    body = datastore("shop", schedule="0 3 * * *")
    for attempt in (
        Attempt(started, started, manifest=MANIFEST, retained=1),
        Attempt(started, started, failure=failure),
    ):
        patched = {**body, "status": schedule_status({}, SHOP, attempt, settings)}
        assert validate("Datastore", patched) == []
        backup = {
            "apiVersion": "liteshift.io/v1alpha1",
            "kind": "DatastoreBackup",
            "metadata": {"name": "b", "namespace": NAMESPACE},
            "spec": {"datastore": "shop"},
            "status": backup_object_status(attempt, verify="full", generation=1),
        }
        assert validate("DatastoreBackup", backup) == []
