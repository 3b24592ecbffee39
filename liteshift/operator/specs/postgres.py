"""The managed Postgres (`spec.postgres.mode: managed`): a one-pod StatefulSet and its Service."""

from __future__ import annotations

from typing import Any

from liteshift.operator.model import Datastore, Resources
from liteshift.operator.specs.common import (
    POSTGRES_UID,
    Manifest,
    container_security_context,
    labels,
    metadata,
    pod_security_context,
    postgres_name,
    resources_block,
    selector_labels,
    volume_claim_template,
)
from liteshift.operator.specs.secrets import POSTGRES_DB, POSTGRES_PORT, POSTGRES_USER

COMPONENT = "postgres"
DATA_DIR = "/var/lib/postgresql/data"

DEFAULT_RESOURCES = Resources(
    requests={"cpu": "250m", "memory": "256Mi"},
    limits={"memory": "1Gi"},
)


def _exec_probe(period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {
            "command": ["pg_isready", "-h", "127.0.0.1", "-U", POSTGRES_USER, "-d", POSTGRES_DB]
        },
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def build_statefulset(ds: Datastore) -> Manifest:
    """Postgres under a read-only root: sockets and /tmp on emptyDirs, data on its own PVC."""
    managed = ds.spec.postgres.managed
    name = postgres_name(ds)
    container = {
        "name": "postgres",
        "image": managed.image,
        "imagePullPolicy": ds.spec.image_pull_policy,
        "ports": [{"name": "postgres", "containerPort": POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            _secret_env("POSTGRES_USER", name, "username"),
            _secret_env("POSTGRES_PASSWORD", name, "password"),
            _secret_env("POSTGRES_DB", name, "database"),
            # A subdirectory: initdb refuses a mount point that holds lost+found.
            {"name": "PGDATA", "value": f"{DATA_DIR}/pgdata"},
        ],
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_DIR},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the emptyDir under a read-only root
        ],
        "resources": resources_block(managed.resources, DEFAULT_RESOURCES),
        "startupProbe": _exec_probe(2, 90),
        "livenessProbe": _exec_probe(10, 6),
        "readinessProbe": _exec_probe(5, 3),
        "securityContext": container_security_context(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ds, name, COMPONENT),
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "selector": {"matchLabels": selector_labels(ds, COMPONENT)},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": ds.spec.reclaim_policy,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": labels(ds, COMPONENT)},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": pod_security_context(POSTGRES_UID),
                    "containers": [container],
                    "volumes": [
                        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
                    ],
                },
            },
            "volumeClaimTemplates": [
                volume_claim_template(
                    ds, "data", COMPONENT, managed.storage.size, managed.storage.storage_class_name
                )
            ],
        },
    }


def build_service(ds: Datastore) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ds, postgres_name(ds), COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(ds, COMPONENT),
            "ports": [
                {
                    "name": "postgres",
                    "port": POSTGRES_PORT,
                    "targetPort": "postgres",
                    "protocol": "TCP",
                }
            ],
        },
    }
