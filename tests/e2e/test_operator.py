"""The liteshift operator (kopf, as its own process) against the real control plane.

It runs as a ServiceAccount holding exactly the RBAC the operator declares it needs
(`liteshift.operator.kube.PERMISSIONS` + `KOPF_PERMISSIONS`, the tables the Helm chart's RBAC
is derived from), so a verb missing there surfaces here as a 403. The real controllers then do
their part: the StatefulSet controller makes the Pod and the PVC, the garbage collector removes
the children after the Datastore is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from liteshift.operator.kube import KOPF_PERMISSIONS, PERMISSIONS
from liteshift.operator.model import GROUP, PLURAL, VERSION
from liteshift.operator.specs.common import DATASTORE_LABEL
from tests.e2e.kube import Kubectl, service_account_token, wait_for

pytestmark = pytest.mark.e2e

CLUSTER_SCOPED = {("apiextensions.k8s.io", "customresourcedefinitions"), ("", "namespaces")}
OPERATOR_SA = "liteshift-operator"
TIMEOUT = 90.0


def rules(table: tuple[tuple[str, str, tuple[str, ...]], ...], cluster: bool) -> list[Any]:
    return [
        client.V1PolicyRule(api_groups=[group], resources=[resource], verbs=list(verbs))
        for group, resource, verbs in table
        if ((group, resource.split("/")[0]) in CLUSTER_SCOPED) == cluster
    ]


def grant_operator_rbac(api: client.ApiClient, namespace: str) -> list[str]:
    """The operator's declared permissions: namespaced ones bound in `namespace` only."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=OPERATOR_SA))
    )
    table = PERMISSIONS + KOPF_PERMISSIONS
    subject = client.RbacV1Subject(kind="ServiceAccount", name=OPERATOR_SA, namespace=namespace)
    cluster_roles = []
    for suffix, cluster in (("cluster", True), ("namespaced", False)):
        name = f"e2e-{namespace}-{suffix}"
        cluster_roles.append(name)
        rbac.create_cluster_role(
            client.V1ClusterRole(
                metadata=client.V1ObjectMeta(name=name), rules=rules(table, cluster)
            )
        )
        ref = client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=name)
        if cluster:
            rbac.create_cluster_role_binding(
                client.V1ClusterRoleBinding(
                    metadata=client.V1ObjectMeta(name=name), role_ref=ref, subjects=[subject]
                )
            )
        else:
            rbac.create_namespaced_role_binding(
                namespace,
                client.V1RoleBinding(
                    metadata=client.V1ObjectMeta(name=OPERATOR_SA), role_ref=ref, subjects=[subject]
                ),
            )
    return cluster_roles


@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def operator(
    api_client: client.ApiClient,
    crds: list[str],
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Operator]:
    """`kopf run -m liteshift.operator.handlers` in `namespace`, logged in as its ServiceAccount."""
    cluster_roles = grant_operator_rbac(api_client, namespace)
    token = service_account_token(api_client, namespace, OPERATOR_SA)
    kubeconfig = tmp_path / "operator.kubeconfig"
    original = yaml.safe_load(kubectl.kubeconfig.read_text())
    original["users"] = [{"name": "operator", "user": {"token": token}}]
    original["contexts"][0]["context"]["user"] = "operator"
    original["contexts"][0]["context"]["namespace"] = namespace
    kubeconfig.write_text(yaml.safe_dump(original))
    whoami = Kubectl(kubectl.binary, kubeconfig).json("auth", "whoami")
    assert whoami["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{namespace}:{OPERATOR_SA}"
    )

    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "LITESHIFT_DRIFT_INTERVAL": "2"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "kopf", "run", "--standalone", "-n", namespace),
                *("-m", "liteshift.operator.handlers"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    running = Operator(process, log)
    try:
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        rbac = client.RbacAuthorizationV1Api(api_client)
        for name in cluster_roles:
            rbac.delete_cluster_role(name)
            if name.endswith("-cluster"):
                rbac.delete_cluster_role_binding(name)


def children(api: client.ApiClient, namespace: str, name: str) -> dict[str, list[Any]]:
    selector = f"{DATASTORE_LABEL}={name}"
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    return {
        "StatefulSet": apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
        "Service": core.list_namespaced_service(namespace, label_selector=selector).items,
        "Secret": core.list_namespaced_secret(namespace, label_selector=selector).items,
        "PersistentVolumeClaim": core.list_namespaced_persistent_volume_claim(
            namespace, label_selector=selector
        ).items,
    }


def get_datastore(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found


def event_reasons(api: client.ApiClient, namespace: str, name: str) -> set[str]:
    events = client.CoreV1Api(api).list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={name},involvedObject.kind=Datastore"
    )
    return {event.reason for event in events.items}


def test_operator_reconciles_updates_and_releases_a_datastore(
    operator: Operator, api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    name = f"shop-{uuid.uuid4().hex[:4]}"
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"reclaimPolicy": "Delete", "sqlite": {"storage": {"size": "1Gi"}}},
    }
    kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    datastore = get_datastore(api_client, namespace, name)
    assert datastore is not None
    uid = datastore["metadata"]["uid"]

    def status_observed(generation: int) -> bool:
        found = get_datastore(api_client, namespace, name) or {}
        return (found.get("status") or {}).get("observedGeneration") == generation

    wait_for(
        lambda: status_observed(1),
        TIMEOUT,
        f"status.observedGeneration 1\n{operator.log_text()[-3000:]}",
    )

    # Children exist, each controlled by the Datastore.
    found = children(api_client, namespace, name)
    for kind in ("StatefulSet", "Service", "Secret"):
        assert found[kind], f"no {kind} for the Datastore"
        for child in found[kind]:
            refs = [(r.kind, r.uid, r.controller) for r in child.metadata.owner_references]
            assert refs == [("Datastore", uid, True)], (kind, child.metadata.name)

    status = (get_datastore(api_client, namespace, name) or {})["status"]
    assert status["phase"]
    assert "Ready" in {c["type"] for c in status["conditions"]}
    assert "Reconciled" in event_reasons(api_client, namespace, name)

    # The real StatefulSet controller creates the claim from the operator's template.
    wait_for(
        lambda: bool(children(api_client, namespace, name)["PersistentVolumeClaim"]),
        TIMEOUT,
        "the StatefulSet controller to create the data PVC",
    )

    # An update of the spec reaches the StatefulSet, accepted by the real API server. The new
    # volume size is part of the StatefulSet's immutable volumeClaimTemplates: the operator must
    # leave it out of its patch, or the whole update fails with 422 "field is immutable".
    patch = {
        "spec": {
            "resources": {"limits": {"memory": "300Mi"}},
            "sqlite": {"storage": {"size": "2Gi"}},
        }
    }
    kubectl.run(
        "patch", "datastore", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )
    wait_for(
        lambda: status_observed(2),
        TIMEOUT,
        f"status.observedGeneration 2\n{operator.log_text()[-3000:]}",
    )
    statefulset = children(api_client, namespace, name)["StatefulSet"]
    sidecar = statefulset[0]
    limits = [c.resources.limits for c in sidecar.spec.template.spec.containers]
    assert {"memory": "300Mi"}.items() <= (limits[0] or {}).items()
    claim = sidecar.spec.volume_claim_templates[0].spec.resources.requests
    assert claim["storage"] == "1Gi"
    assert "ApplyFailed" not in event_reasons(api_client, namespace, name)

    # Delete: the operator's finalizer releases the PVCs (reclaimPolicy Delete), then the
    # garbage collector removes every child the Datastore owned.
    kubectl.run("delete", "datastore", name, "-n", namespace, "--wait=false")
    wait_for(
        lambda: get_datastore(api_client, namespace, name) is None,
        TIMEOUT,
        f"the operator to release the Datastore\n{operator.log_text()[-3000:]}",
    )
    wait_for(
        lambda: not any(children(api_client, namespace, name).values()),
        120,
        "the children to be deleted (operator for PVCs, garbage collector for the rest)",
    )

    log = operator.log_text()
    assert operator.process.poll() is None, log[-3000:]
    assert "403" not in log and "Forbidden" not in log, log[-3000:]
