"""StatefulSet and Job: the real validation and the real controllers the operator relies on.

The API server forbids changing most of a StatefulSet's spec after creation (an operator must
not try); the StatefulSet controller creates the Pod and the PVC from volumeClaimTemplates; the
Job controller creates the Pod of a backup Job. No kubelet runs, so the Pods stay Pending.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import api_message, wait_for

pytestmark = pytest.mark.e2e


def statefulset(name: str, size: str) -> client.V1StatefulSet:
    labels = {"app.kubernetes.io/instance": name}
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1StatefulSetSpec(
            replicas=1,
            service_name=name,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[
                        client.V1Container(
                            name="sidecar",
                            image="liteshift:e2e",
                            volume_mounts=[client.V1VolumeMount(name="data", mount_path="/data")],
                        )
                    ]
                ),
            ),
            volume_claim_templates=[
                client.V1PersistentVolumeClaim(
                    metadata=client.V1ObjectMeta(name="data"),
                    spec=client.V1PersistentVolumeClaimSpec(
                        access_modes=["ReadWriteOnce"],
                        resources=client.V1VolumeResourceRequirements(requests={"storage": size}),
                    ),
                )
            ],
        ),
    )


def test_statefulset_controller_creates_pod_and_claim_and_storage_is_immutable(
    api_client: client.ApiClient, namespace: str
) -> None:
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_stateful_set(namespace, statefulset("store", "1Gi"))

    def claim_and_pod() -> bool:
        claims = core.list_namespaced_persistent_volume_claim(namespace).items
        pods = core.list_namespaced_pod(namespace).items
        return [c.metadata.name for c in claims] == ["data-store-0"] and [
            p.metadata.name for p in pods
        ] == ["store-0"]

    wait_for(claim_and_pod, 60, "the StatefulSet controller to create data-store-0 and store-0")
    pod = core.read_namespaced_pod("store-0", namespace)
    assert pod.status.phase == "Pending"  # no kubelet, no scheduler

    # Growing the volume through the StatefulSet is an update the API server refuses.
    with pytest.raises(ApiException) as caught:
        apps.patch_namespaced_stateful_set(
            "store",
            namespace,
            {
                "spec": {
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data"},
                            "spec": {
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "2Gi"}},
                            },
                        }
                    ]
                }
            },
        )
    assert caught.value.status == 422
    message = api_message(caught.value)
    assert "spec.volumeClaimTemplates" in message
    assert "field is immutable" in message

    # The pod template is one of the fields that may change.
    patched = apps.patch_namespaced_stateful_set(
        "store",
        namespace,
        {"spec": {"template": {"metadata": {"annotations": {"liteshift.io/restart": "1"}}}}},
    )
    assert patched.spec.template.metadata.annotations == {"liteshift.io/restart": "1"}


def test_job_controller_creates_the_pod_of_a_job(
    api_client: client.ApiClient, namespace: str
) -> None:
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="backup"),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[
                            client.V1Container(
                                name="backup", image="liteshift:e2e", args=["backup"]
                            )
                        ],
                    )
                ),
            ),
        ),
    )

    def job_pod() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=backup").items
        return len(pods) == 1 and pods[0].metadata.owner_references[0].kind == "Job"

    wait_for(job_pod, 60, "the Job controller to create the job's pod")
    wait_for(
        lambda: (batch.read_namespaced_job_status("backup", namespace).status.active or 0) == 1,
        60,
        "the Job status to count one active pod",
    )
