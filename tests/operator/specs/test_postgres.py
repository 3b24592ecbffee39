"""The managed Postgres StatefulSet and Service, compared as dicts."""

from __future__ import annotations

from liteshift.operator.model import Datastore
from liteshift.operator.specs.postgres import build_service, build_statefulset


def ds() -> Datastore:
    return Datastore.parse(
        {
            "metadata": {"name": "chat", "namespace": "apps", "uid": "u-2"},
            "spec": {
                "postgres": {
                    "mode": "managed",
                    "managed": {
                        "storage": {"size": "50Gi"},
                        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                    },
                }
            },
        }
    )


SELECTOR = {
    "app.kubernetes.io/name": "liteshift",
    "app.kubernetes.io/instance": "chat",
    "app.kubernetes.io/component": "postgres",
}


def test_service() -> None:
    service = build_service(ds())
    assert service["metadata"]["name"] == "chat-postgres"
    assert service["spec"] == {
        "type": "ClusterIP",
        "selector": SELECTOR,
        "ports": [{"name": "postgres", "port": 5432, "targetPort": "postgres", "protocol": "TCP"}],
    }


def test_statefulset() -> None:
    sts = build_statefulset(ds())
    assert sts["metadata"]["name"] == "chat-postgres"
    assert sts["spec"]["replicas"] == 1
    assert sts["spec"]["selector"] == {"matchLabels": SELECTOR}
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "docker.io/library/postgres:16.4"
    assert container["env"] == [
        {
            "name": "POSTGRES_USER",
            "valueFrom": {"secretKeyRef": {"name": "chat-postgres", "key": "username"}},
        },
        {
            "name": "POSTGRES_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "chat-postgres", "key": "password"}},
        },
        {
            "name": "POSTGRES_DB",
            "valueFrom": {"secretKeyRef": {"name": "chat-postgres", "key": "database"}},
        },
        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
    ]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsUser"] == 999
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert [v["name"] for v in pod["volumes"]] == ["run", "tmp"]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "50Gi"}}
