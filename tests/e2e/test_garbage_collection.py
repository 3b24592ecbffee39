"""kube-controller-manager's garbage collector removes a Datastore's children after it is deleted.

kmock's emulator has no garbage collector: deleting an owner there leaves every child behind.
Here the real one follows ownerReferences, through the StatefulSet to the Pod its controller made.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.kube import wait_for

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "liteshift.io", "v1alpha1", "datastores"
# The garbage collector picks up a new CRD's resource on its 30 s discovery resync.
GC_TIMEOUT = 120.0


def owner_reference(owner: dict[str, Any]) -> client.V1OwnerReference:
    return client.V1OwnerReference(
        api_version=owner["apiVersion"],
        kind=owner["kind"],
        name=owner["metadata"]["name"],
        uid=owner["metadata"]["uid"],
        controller=True,
        block_owner_deletion=True,
    )


def exists(read: Any, *args: str) -> bool:
    try:
        read(*args)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def make_children(
    api_client: client.ApiClient, namespace: str, name: str
) -> tuple[dict[str, Any], client.AppsV1Api, client.CoreV1Api]:
    custom = client.CustomObjectsApi(api_client)
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    owner: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Datastore",
            "metadata": {"name": name},
            "spec": {},
        },
    )
    ref = owner_reference(owner)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=f"{name}-config", owner_references=[ref]),
            data={"engine": "sqlite"},
        ),
    )
    labels = {"app.kubernetes.io/instance": name}
    apps.create_namespaced_stateful_set(
        namespace,
        client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name=name, owner_references=[ref]),
            spec=client.V1StatefulSetSpec(
                replicas=1,
                service_name=name,
                selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(
                        containers=[client.V1Container(name="sidecar", image="liteshift:e2e")]
                    ),
                ),
            ),
        ),
    )
    # The StatefulSet controller (no kubelet runs it) creates the Pod, owned by the StatefulSet.
    wait_for(
        lambda: exists(core.read_namespaced_pod, f"{name}-0", namespace),
        60,
        "the StatefulSet controller to create the pod",
    )
    pod = core.read_namespaced_pod(f"{name}-0", namespace)
    assert [(r.kind, r.name) for r in pod.metadata.owner_references] == [("StatefulSet", name)]
    return owner, apps, core


def test_children_are_collected_after_the_datastore_is_deleted(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    name = "owned"
    _, apps, core = make_children(api_client, namespace, name)

    client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )

    wait_for(
        lambda: not exists(core.read_namespaced_config_map, f"{name}-config", namespace),
        GC_TIMEOUT,
        "the garbage collector to delete the ConfigMap",
    )
    wait_for(
        lambda: not exists(apps.read_namespaced_stateful_set, name, namespace),
        GC_TIMEOUT,
        "the garbage collector to delete the StatefulSet",
    )
    wait_for(
        lambda: not exists(core.read_namespaced_pod, f"{name}-0", namespace),
        GC_TIMEOUT,
        "the garbage collector to delete the StatefulSet's pod",
    )


def test_foreground_deletion_waits_for_the_children(
    crds: list[str], api_client: client.ApiClient, namespace: str
) -> None:
    name = "foreground"
    _, apps, core = make_children(api_client, namespace, name)
    custom = client.CustomObjectsApi(api_client)

    custom.delete_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        PLURAL,
        name,
        body=client.V1DeleteOptions(propagation_policy="Foreground"),
    )
    # The owner stays, marked for deletion with the foreground finalizer, until the garbage
    # collector has removed every child that blocks it.
    owner = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    assert owner["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in owner["metadata"]["finalizers"]

    wait_for(
        lambda: (
            not exists(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
        ),
        GC_TIMEOUT,
        "the Datastore to go once its children are gone",
    )
    assert not exists(core.read_namespaced_config_map, f"{name}-config", namespace)
    assert not exists(apps.read_namespaced_stateful_set, name, namespace)
