"""The liteshift operator, installed with its Helm chart, against the real control plane.

`helm install` (the real binary) creates the operator's ServiceAccount, its RBAC and its
Deployment in a namespace that enforces the `restricted` Pod Security Standard. No kubelet runs
the Deployment's Pod, so the test runs the Deployment's own container command (`liteshift
operator ...` with its arguments and environment) as a local process logged in with that
ServiceAccount's token, and waits for its /healthz as the chart's startup probe would: the
chart's RBAC is what the API server checks, and a missing verb surfaces as a 403. The real
controllers then do their part: the Deployment and StatefulSet controllers create Pods that the
PodSecurity admission must accept, the StatefulSet controller makes the PVC, and the garbage
collector removes the children after the Datastore is gone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from liteshift.local.ports import free_port
from liteshift.operator.model import GROUP, PLURAL, VERSION
from liteshift.operator.specs.common import DATASTORE_LABEL
from tests.e2e.kube import Kubectl, api_message, service_account_token, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "liteshift"
HELM = Path(sys.executable).parent / "helm"
LITESHIFT = Path(sys.executable).parent / "liteshift"
TIMEOUT = 90.0


@dataclass
class Operator:
    process: subprocess.Popen[bytes]
    log: Path
    release: str
    service_account: str

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def helm(kubectl: Kubectl, *args: str) -> str:
    if not HELM.is_file():
        pytest.fail(f"no helm at {HELM}: run scripts/bootstrap.sh", pytrace=False)
    result = subprocess.run(
        [str(HELM), "--kubeconfig", str(kubectl.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout


@pytest.fixture
def operator(
    api_client: client.ApiClient, crds: list[str], kubectl: Kubectl, namespace: str, tmp_path: Path
) -> Iterator[Operator]:
    """The chart installed in `namespace`; its operator running locally as its ServiceAccount."""
    kubectl.run(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )  # fmt: skip
    release = f"ls-{namespace.removeprefix('e2e-')}"
    health_port = free_port()
    helm(
        kubectl, "install", release, str(CHART), "-n", namespace,
        f"--set=operator.watchNamespaces={{{namespace}}}", "--set=operator.driftInterval=2",
        f"--set=operator.healthPort={health_port}", "--set=operator.logFormat=text",
    )  # fmt: skip
    try:
        deployments = client.AppsV1Api(api_client).list_namespaced_deployment(
            namespace, label_selector=f"app.kubernetes.io/instance={release}"
        )
        assert len(deployments.items) == 1
        pod_spec = deployments.items[0].spec.template.spec
        account, container = pod_spec.service_account_name, pod_spec.containers[0]
        token = service_account_token(api_client, namespace, account)
        kubeconfig = tmp_path / "operator.kubeconfig"
        config = yaml.safe_load(kubectl.kubeconfig.read_text())
        config["users"] = [{"name": "operator", "user": {"token": token}}]
        config["contexts"][0]["context"]["user"] = "operator"
        config["contexts"][0]["context"]["namespace"] = namespace
        kubeconfig.write_text(yaml.safe_dump(config))
        whoami = Kubectl(kubectl.binary, kubeconfig).json("auth", "whoami")
        assert whoami["status"]["userInfo"]["username"] == (
            f"system:serviceaccount:{namespace}:{account}"
        )

        # The Deployment's own container command and environment, run here instead of a kubelet
        # (the image's entrypoint is `liteshift`).
        log = tmp_path / "operator.log"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        env.update({var.name: var.value for var in container.env or []})
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(LITESHIFT), *container.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        running = Operator(process, log, release, account)
        wait_for(
            lambda: healthz(health_port) == 200 or process.poll() is not None,
            TIMEOUT,
            lambda: f"the operator's /healthz (the chart's startup probe)\n{running.log_text()}",
        )
        assert process.poll() is None, running.log_text()
        try:
            yield running
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        helm(kubectl, "uninstall", release, "-n", namespace)


def test_chart_installs_a_deployment_whose_pod_passes_restricted_pod_security(
    operator: Operator, api_client: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    selector = f"app.kubernetes.io/instance={operator.release}"
    deployments = apps.list_namespaced_deployment(namespace, label_selector=selector).items
    assert len(deployments) == 1
    assert deployments[0].spec.template.spec.service_account_name == operator.service_account
    # A Pod without hardening is refused here: the namespace really enforces `restricted`.
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(
            namespace,
            client.V1Pod(
                metadata=client.V1ObjectMeta(name="unhardened"),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="x")]),
            ),
        )
    assert refused.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in api_message(refused.value)
    # The Deployment and ReplicaSet controllers create the Pod; PodSecurity admission
    # (restricted) would refuse a Pod that is not hardened, leaving only FailedCreate events.
    wait_for(
        lambda: bool(core.list_namespaced_pod(namespace, label_selector=selector).items),
        TIMEOUT,
        lambda: f"the operator's Pod; events: {failed_creates(api_client, namespace)}",
    )


def failed_creates(api: client.ApiClient, namespace: str) -> list[str]:
    events = client.CoreV1Api(api).list_namespaced_event(namespace).items
    return [str(event.message) for event in events if event.reason == "FailedCreate"]


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
        lambda: f"status.observedGeneration 1\n{operator.log_text()[-3000:]}",
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

    # The real StatefulSet controller creates the claim from the operator's template, and a
    # Pod that the namespace's restricted PodSecurity admission accepts.
    wait_for(
        lambda: bool(children(api_client, namespace, name)["PersistentVolumeClaim"]),
        TIMEOUT,
        "the StatefulSet controller to create the data PVC",
    )
    core = client.CoreV1Api(api_client)
    wait_for(
        lambda: bool(
            core.list_namespaced_pod(namespace, label_selector=f"{DATASTORE_LABEL}={name}").items
        ),
        TIMEOUT,
        lambda: f"the sidecar Pod; events: {failed_creates(api_client, namespace)}",
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
        lambda: f"status.observedGeneration 2\n{operator.log_text()[-3000:]}",
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
        lambda: f"the operator to release the Datastore\n{operator.log_text()[-3000:]}",
    )
    wait_for(
        lambda: not any(children(api_client, namespace, name).values()),
        120,
        "the children to be deleted (operator for PVCs, garbage collector for the rest)",
    )

    log = operator.log_text()
    assert operator.process.poll() is None, log[-3000:]
    assert "403" not in log and "Forbidden" not in log, log[-3000:]
