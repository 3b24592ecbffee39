"""kopf runs the Datastore handlers for real against kmock's Kubernetes emulator."""

from __future__ import annotations

import time
from typing import Any

from liteshift.operator import reconcile
from liteshift.operator.kube import Kube
from liteshift.operator.model import Datastore
from tests.operator.cluster import NAMESPACE, Cluster, running_operator, wait_for


def datastore(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": f"uid-{name}",
        },
        "spec": spec,
    }


def status_of(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict((cluster.get("Datastore", name) or {}).get("status") or {})


def condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any]:
    for cond in status_of(cluster, name).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def events(cluster: Cluster, name: str, reason: str) -> list[dict[str, Any]]:
    return [
        event
        for event in cluster.list("Event")
        if event.get("reason") == reason and event["involvedObject"]["name"] == name
    ]


def env_of(statefulset: dict[str, Any]) -> dict[str, str]:
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return {item["name"]: item.get("value", "") for item in container["env"]}


def requests_to(cluster: Cluster, method: str, plural: str, name: str | None) -> int:
    return sum(
        1
        for request in list(cluster.emulator)
        if request.method == method
        and request.resource is not None
        and request.resource.plural == plural
        and request.name == name
    )


def test_create_builds_owned_children_and_reports_readiness(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {}))

    statefulset = wait_for(lambda: cluster.get("StatefulSet", "shop"), message="StatefulSet")
    service = wait_for(lambda: cluster.get("Service", "shop"), message="Service")
    secret = wait_for(lambda: cluster.get("Secret", "shop-auth"), message="auth Secret")
    for child in (statefulset, service):
        (ref,) = child["metadata"]["ownerReferences"]
        assert ref["kind"] == "Datastore"
        assert ref["uid"] == "uid-shop"
        assert ref["controller"] is True
    # reclaimPolicy Retain: the generated Secret outlives the Datastore, with the volumes.
    assert "ownerReferences" not in secret["metadata"]
    assert set(secret["stringData"]) == {"api-token", "admin-token"}

    status = wait_for(
        lambda: status_of(cluster, "shop").get("phase") and status_of(cluster, "shop")
    )
    assert status["phase"] == "Provisioning"
    assert status["engine"] == "sqlite"
    assert status["endpoint"] == "http://shop.apps.svc:8080"
    assert status["observedGeneration"] == 1
    assert status["promotion"] == {"state": "Idle"}
    types = [cond["type"] for cond in status["conditions"]]
    assert types == [
        "Ready",
        "BackupsHealthy",
        "MetricsAvailable",
        "PromotionRecommended",
        "Promoted",
    ]
    ready = condition(cluster, "shop", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SidecarNotReady")
    assert "0/1 sidecar pods ready" in ready["message"]
    assert wait_for(lambda: events(cluster, "shop", "Reconciled"), message="Reconciled event")

    # Play the StatefulSet controller: the pod turns ready; the timer notices.
    cluster.patch("StatefulSet", "shop", {"status": {"replicas": 1, "readyReplicas": 1}})
    wait_for(lambda: status_of(cluster, "shop").get("phase") == "Ready", message="phase Ready")
    ready = condition(cluster, "shop", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "SidecarReady")
    assert status_of(cluster, "shop")["readyReplicas"] == 1


def test_update_changes_the_children(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {}))
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 1, message="gen 1")
    before = cluster.get("StatefulSet", "shop")
    assert before is not None
    assert env_of(before)["LITESHIFT_SQLITE_SYNCHRONOUS"] == "FULL"
    assert cluster.get("StatefulSet", "shop-postgres") is None

    cluster.patch(
        "Datastore",
        "shop",
        {
            "spec": {
                "sqlite": {"synchronous": "NORMAL"},
                "postgres": {"mode": "managed"},
                "media": {"enabled": True},
                "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}},
            },
        },
    )
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 2, message="gen 2")
    after = cluster.get("StatefulSet", "shop")
    assert after is not None
    env = env_of(after)
    assert env["LITESHIFT_SQLITE_SYNCHRONOUS"] == "NORMAL"
    assert env["IMAGE_PROCESSING_ENABLED"] == "true"
    assert env["LITESHIFT_MEDIA_DB_URL_FILE"] == "/etc/liteshift/postgres/dsn"
    container = after["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "250m", "memory": "256Mi"}}
    postgres = cluster.get("StatefulSet", "shop-postgres")
    assert postgres is not None
    assert postgres["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    assert cluster.get("Service", "shop-postgres") is not None
    credentials = cluster.get("Secret", "shop-postgres")
    assert credentials is not None
    assert credentials["stringData"]["dsn"].startswith("postgresql://liteshift:")


def test_rerun_is_harmless(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {}))
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 1, message="status")
    secret = cluster.get("Secret", "shop-auth")
    assert secret is not None
    body = cluster.get("Datastore", "shop")
    assert body is not None

    # A second and third reconcile (what a resume after an operator restart does) see 409s,
    # compare, and change nothing: no patch, no token rotation.
    kube = Kube.from_url(cluster.url)
    try:
        patches_before = requests_to(cluster, "PATCH", "statefulsets", "shop")
        for _ in range(2):
            result = reconcile.reconcile(kube, Datastore.parse(body), body["status"])
            assert set(result.outcomes.values()) == {"unchanged"}, result.outcomes
            assert result.events == []
        assert requests_to(cluster, "PATCH", "statefulsets", "shop") == patches_before
    finally:
        kube.close()
    assert cluster.get("Secret", "shop-auth") == secret

    # The drift timer (every second here) finds nothing to do either.
    patches = requests_to(cluster, "PATCH", "statefulsets", "shop")
    time.sleep(3)
    assert requests_to(cluster, "PATCH", "statefulsets", "shop") == patches
    assert events(cluster, "shop", "DriftCorrected") == []


def test_drift_is_corrected(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {}))
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 1, message="status")

    cluster.delete("Service", "shop")
    cluster.patch(
        "StatefulSet",
        "shop",
        {"spec": {"template": {"spec": {"automountServiceAccountToken": True}}}},
    )
    wait_for(lambda: cluster.get("Service", "shop"), message="Service re-created")
    wait_for(
        lambda: (
            (cluster.get("StatefulSet", "shop") or {})["spec"]["template"]["spec"][
                "automountServiceAccountToken"
            ]
            is False
        ),
        message="StatefulSet restored",
    )
    (event, *_) = wait_for(lambda: events(cluster, "shop", "DriftCorrected"), message="event")
    assert event["type"] == "Warning"
    assert "Service/shop" in event["message"]


def _pvcs_as_the_statefulset_controller_would(cluster: Cluster, name: str) -> list[str]:
    names = [f"data-{name}-0", f"backups-{name}-0"]
    for pvc in names:
        cluster.create(
            "PersistentVolumeClaim",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {
                    "name": pvc,
                    "namespace": NAMESPACE,
                    "labels": {
                        "liteshift.io/datastore": name,
                        "app.kubernetes.io/name": "liteshift",
                    },
                },
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )
    # Someone else's claim in the same namespace must survive either way.
    cluster.create(
        "PersistentVolumeClaim",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "unrelated", "namespace": NAMESPACE, "labels": {"app": "other"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    return names


def test_delete_with_retain_keeps_the_volumes(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {"reclaimPolicy": "Retain"}))
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 1, message="status")
    pvcs = _pvcs_as_the_statefulset_controller_would(cluster, "shop")

    cluster.delete("Datastore", "shop")
    wait_for(lambda: cluster.get("Datastore", "shop") is None, message="Datastore gone")
    for pvc in pvcs:
        assert cluster.get("PersistentVolumeClaim", pvc) is not None
    assert cluster.get("Secret", "shop-auth") is not None
    (event,) = events(cluster, "shop", "VolumesRetained")
    assert "data-shop-0" in event["message"]


def test_delete_with_delete_removes_the_volumes(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {"reclaimPolicy": "Delete"}))
    wait_for(lambda: status_of(cluster, "shop").get("observedGeneration") == 1, message="status")
    secret = cluster.get("Secret", "shop-auth")
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
    pvcs = _pvcs_as_the_statefulset_controller_would(cluster, "shop")

    cluster.delete("Datastore", "shop")
    wait_for(lambda: cluster.get("Datastore", "shop") is None, message="Datastore gone")
    for pvc in pvcs:
        assert cluster.get("PersistentVolumeClaim", pvc) is None
    assert cluster.get("PersistentVolumeClaim", "unrelated") is not None
    assert cluster.get("Secret", "shop-auth") is None
    (event,) = events(cluster, "shop", "VolumesDeleted")
    assert "data-shop-0" in event["message"]


def test_invalid_spec_yields_a_condition_not_a_crash_loop(cluster: Cluster) -> None:
    cluster.create("Datastore", datastore("shop", {"replicas": 3, "promotion": {"policy": "off"}}))
    wait_for(lambda: status_of(cluster, "shop").get("phase") == "Invalid", message="Invalid")
    ready = condition(cluster, "shop", "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "replicas > 1 needs Postgres" in ready["message"]
    assert cluster.get("StatefulSet", "shop") is None

    # No retries: one warning, and it stays one.
    wait_for(lambda: events(cluster, "shop", "InvalidSpec"), message="InvalidSpec event")
    time.sleep(3)
    assert len(events(cluster, "shop", "InvalidSpec")) == 1
    assert cluster.get("StatefulSet", "shop") is None

    # Fixing the spec is all it takes.
    cluster.patch(
        "Datastore",
        "shop",
        {"spec": {"promotion": {"policy": "manual"}}},
    )
    wait_for(lambda: cluster.get("StatefulSet", "shop"), message="StatefulSet after the fix")
    wait_for(lambda: status_of(cluster, "shop").get("phase") == "Provisioning", message="phase")
    assert condition(cluster, "shop", "Ready")["reason"] == "SidecarNotReady"


def test_operator_restart_resumes_without_changes(bare_cluster: Cluster) -> None:
    with running_operator(bare_cluster.url):
        bare_cluster.create("Datastore", datastore("shop", {}))
        wait_for(
            lambda: status_of(bare_cluster, "shop").get("observedGeneration") == 1, message="1"
        )
    settled = {
        "patches": requests_to(bare_cluster, "PATCH", "statefulsets", "shop"),
        "reconciled": len(events(bare_cluster, "shop", "Reconciled")),
        "secret": bare_cluster.get("Secret", "shop-auth"),
    }
    with running_operator(bare_cluster.url):
        # The resume handler runs for the existing Datastore: 409s, comparisons, no changes.
        wait_for(
            lambda: requests_to(bare_cluster, "POST", "statefulsets", None) >= 2,
            message="the resumed reconcile",
        )
        time.sleep(2)
    assert requests_to(bare_cluster, "PATCH", "statefulsets", "shop") == settled["patches"]
    assert len(events(bare_cluster, "shop", "Reconciled")) == settled["reconciled"]
    assert bare_cluster.get("Secret", "shop-auth") == settled["secret"]


def test_missing_referenced_secrets_are_reported_until_they_exist(cluster: Cluster) -> None:
    spec = {
        "auth": {"secretRef": {"name": "shop-tokens"}},
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": "shop-pg"}}},
    }
    cluster.create("Datastore", datastore("shop", spec))
    wait_for(
        lambda: condition(cluster, "shop", "Ready").get("reason") == "SecretMissing",
        message="SecretMissing",
    )
    message = condition(cluster, "shop", "Ready")["message"]
    assert "'shop-tokens' named in spec.auth.secretRef does not exist" in message
    assert "'shop-pg' with key 'dsn'" in message
    assert wait_for(lambda: events(cluster, "shop", "SecretMissing"), message="Warning event")
    assert cluster.get("Secret", "shop-auth") is None  # a referenced Secret is never generated
    statefulset = cluster.get("StatefulSet", "shop")
    assert statefulset is not None  # pods wait for the Secret; the rest is in place

    for name, data in (("shop-tokens", {"api-token": "YQ==", "admin-token": "Yg=="}),
                       ("shop-pg", {"dsn": "cG9zdGdyZXNxbDovL3g="})):  # fmt: skip
        cluster.create(
            "Secret",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": data},
        )
    wait_for(
        lambda: condition(cluster, "shop", "Ready").get("reason") == "SidecarNotReady",
        message="the drift check to notice the Secrets",
    )


def test_refused_requests_are_reported_and_retried(cluster: Cluster) -> None:
    cluster.emulator.refused.add(("POST", "statefulsets"))
    cluster.create("Datastore", datastore("shop", {}))
    (event, *_) = wait_for(lambda: events(cluster, "shop", "ApplyFailed"), message="ApplyFailed")
    assert event["type"] == "Warning"
    assert "Kubernetes API 403 Forbidden" in event["message"]
    assert cluster.get("StatefulSet", "shop") is None

    cluster.emulator.refused.clear()  # the RBAC got fixed
    wait_for(lambda: cluster.get("StatefulSet", "shop"), message="StatefulSet after the retry")
    wait_for(lambda: status_of(cluster, "shop").get("phase") == "Provisioning", message="phase")
