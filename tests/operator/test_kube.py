"""kube.py: merge semantics helpers and the permission table the RBAC derives from."""

from __future__ import annotations

from pathlib import Path

import pytest

from liteshift.operator import kube
from liteshift.operator.kube import Kube, contains, mutable_part
from tests.operator.cluster import Cluster, wait_for


def test_contains_ignores_server_side_additions() -> None:
    desired = {"spec": {"ports": [{"name": "http", "port": 8080}]}}
    live = {"spec": {"ports": [{"name": "http", "port": 8080, "nodePort": None}], "clusterIP": "x"}}
    assert contains(live, desired)
    assert not contains({"spec": {"ports": []}}, desired)
    assert not contains({"spec": {"ports": [{"name": "http", "port": 80}]}}, desired)


def test_mutable_part_drops_immutable_statefulset_fields() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "a", "namespace": "b"},
        "spec": {"selector": {}, "serviceName": "a", "volumeClaimTemplates": [], "replicas": 1},
    }
    assert mutable_part(sts) == {
        "kind": "StatefulSet",
        "metadata": {"name": "a", "namespace": "b"},
        "spec": {"replicas": 1},
    }
    assert "volumeClaimTemplates" in sts["spec"]  # the input is left alone


def test_undeclared_calls_are_refused(bare_cluster: Cluster) -> None:
    client = Kube.from_url(bare_cluster.url)
    try:
        with pytest.raises(AssertionError, match=r"missing from kube\.PERMISSIONS"):
            client.list("StatefulSet", "apps", {})
        assert client.get("Secret", "apps", "absent") is None
        assert client.delete("Secret", "apps", "absent") is False
    finally:
        client.close()


def _verb(request: object) -> str:
    method = getattr(request, "method")  # noqa: B009
    params = getattr(request, "params")  # noqa: B009
    name = getattr(request, "name")  # noqa: B009
    if method == "GET":
        return "watch" if params.get("watch") == "true" else "get" if name else "list"
    return {"POST": "create", "PATCH": "patch", "DELETE": "delete"}[method]


def test_operator_requests_stay_within_the_declared_permissions(cluster: Cluster) -> None:
    # A whole lifecycle: create (Retain), update (managed Postgres, Delete: the generated
    # Secret gets adopted), drift (one child deleted, one changed), delete.
    cluster.create(
        "Datastore",
        {
            "apiVersion": "liteshift.io/v1alpha1",
            "kind": "Datastore",
            "metadata": {"name": "shop", "namespace": "apps"},
            "spec": {"reclaimPolicy": "Retain"},
        },
    )
    wait_for(lambda: cluster.get("StatefulSet", "shop"), message="StatefulSet")
    cluster.patch(
        "Datastore", "shop", {"spec": {"postgres": {"mode": "managed"}, "reclaimPolicy": "Delete"}}
    )
    wait_for(lambda: cluster.get("StatefulSet", "shop-postgres"), message="Postgres")
    wait_for(
        lambda: (
            (cluster.get("Secret", "shop-auth") or {}).get("metadata", {}).get("ownerReferences")
        ),
        message="auth Secret adopted",
    )
    cluster.delete("Service", "shop")
    cluster.patch("Service", "shop-postgres", {"spec": {"type": "NodePort"}})
    wait_for(lambda: cluster.get("Service", "shop"), message="Service re-created")
    wait_for(
        lambda: (cluster.get("Service", "shop-postgres") or {})["spec"]["type"] == "ClusterIP",
        message="Service restored",
    )
    cluster.create(
        "PersistentVolumeClaim",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-shop-0", "labels": {"liteshift.io/datastore": "shop"}},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    cluster.delete("Datastore", "shop")
    wait_for(lambda: cluster.get("Datastore", "shop") is None, message="deleted")
    assert cluster.get("PersistentVolumeClaim", "data-shop-0") is None

    declared = {
        (group, resource, verb)
        for group, resource, verbs in kube.PERMISSIONS + kube.KOPF_PERMISSIONS
        for verb in verbs
    }
    used = set()
    for request in list(cluster.emulator):
        if request.resource is None or request.headers.get("User-Agent") == Cluster.USER_AGENT:
            continue
        if request.resource.plural is None:
            continue  # API discovery: open to every authenticated client, no RBAC rule
        resource = request.resource.plural
        if request.url.path.endswith("/status"):
            resource += "/status"
        used.add((request.resource.group, resource, _verb(request)))
    assert used, "no operator requests recorded"
    assert used <= declared, used - declared
    # Every verb the operator's own client declares was exercised by this lifecycle.
    own = {(g, r, v) for g, r, verbs in kube.PERMISSIONS for v in verbs}
    assert own == used & own, own - used


def test_docs_list_exactly_the_declared_permissions() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "operator.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and " | `" in line]
    for group, resource, verbs in kube.PERMISSIONS + kube.KOPF_PERMISSIONS:
        shown = f"`{group}`" if group else "core"
        row = f"| {shown} | `{resource}` | {', '.join(verbs)} |"
        assert any(line.startswith(row) for line in rows), row


def test_canonical_quantities_are_no_drift() -> None:
    requests = {"cpu": "0.5", "memory": "1024Mi"}
    desired = {"resources": {"requests": requests, "limits": {"cpu": "2"}}}
    live = {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}}}
    assert contains(live, desired)
    assert not contains({"resources": {**live["resources"], "limits": {"cpu": "3"}}}, desired)
    assert not contains({"name": "http"}, {"name": "https"})
    assert kube.parse_quantity("1e3") == kube.parse_quantity("1k") == 1000
    assert kube.parse_quantity("shop") is None
