"""The sidecar: its StatefulSet (data + backup volumes) and its Service.

Environment variables follow docs/configuration.md, the contract with `liteshift serve`.
"""

from __future__ import annotations

from typing import Any

from liteshift.operator.image import DEFAULT_IMAGE
from liteshift.operator.model import Datastore, Resources
from liteshift.operator.specs.common import (
    SIDECAR_UID,
    Manifest,
    auth_secret_name,
    container_security_context,
    labels,
    metadata,
    pod_security_context,
    postgres_name,
    resources_block,
    selector_labels,
    sidecar_name,
    volume_claim_template,
)

COMPONENT = "sidecar"
PORT = 8080
DATA_DIR = "/data"
SQLITE_PATH = f"{DATA_DIR}/liteshift.db"
# sqlite:// plus the absolute path, as file:// URLs do (see docs/configuration.md).
SQLITE_URL = f"sqlite://{SQLITE_PATH}"
BACKUP_DIR = "/backups"
AUTH_DIR = "/etc/liteshift/auth"
POSTGRES_DIR = "/etc/liteshift/postgres"
DSN_FILE = f"{POSTGRES_DIR}/dsn"

DEFAULT_RESOURCES = Resources(
    requests={"cpu": "100m", "memory": "128Mi"},
    limits={"memory": "512Mi"},
)


def endpoint(ds: Datastore) -> str:
    """In-cluster URL of the sidecar API (the Service)."""
    return f"http://{sidecar_name(ds)}.{ds.namespace}.svc:{PORT}"


def uses_postgres_dsn(ds: Datastore, engine: str) -> bool:
    """Whether the sidecar needs the Postgres DSN mounted: serving from Postgres, media tables,
    or a declared promotion target (managed or external) it must find again after a restart
    that follows a cutover (`LITESHIFT_PROMOTION_TARGET_URL_FILE`)."""
    return engine == "postgres" or ds.spec.postgres.mode != "none"


def postgres_dsn_secret(ds: Datastore) -> tuple[str, str]:
    """(Secret name, key) of the DSN: the user's for external, the generated one for managed."""
    external = ds.spec.postgres.external
    if ds.spec.postgres.mode == "external" and external and external.dsn_secret_ref:
        return external.dsn_secret_ref.name, external.dsn_secret_ref.key
    return postgres_name(ds), "dsn"


def replicas(ds: Datastore, engine: str) -> int:
    """Pods to run: SQLite has one writer, so more than one only once serving from Postgres."""
    return ds.spec.replicas if engine == "postgres" else 1


def _env(ds: Datastore, engine: str) -> list[dict[str, Any]]:
    env = {
        "LITESHIFT_HOST": "0.0.0.0",  # noqa: S104 - the pod's port is what the Service reaches
        "LITESHIFT_PORT": str(PORT),
        "LITESHIFT_DATASTORE": ds.name,
        "LITESHIFT_NAMESPACE": ds.namespace,
        "LITESHIFT_API_TOKEN_FILE": f"{AUTH_DIR}/api-token",
        "LITESHIFT_ADMIN_TOKEN_FILE": f"{AUTH_DIR}/admin-token",
        "LITESHIFT_SQLITE_SYNCHRONOUS": ds.spec.sqlite.synchronous,
        "LITESHIFT_MIGRATE_ON_START": "true",
        "IMAGE_PROCESSING_ENABLED": "true" if ds.spec.media.enabled else "false",
        "LITESHIFT_BACKUP_DIR": BACKUP_DIR,
        "LITESHIFT_LOG_FORMAT": "json",
    }
    if engine == "postgres":
        # Promoted: with postgres.mode none this is the managed Postgres the promotion made.
        env["LITESHIFT_DB_URL_FILE"] = DSN_FILE
    else:
        env["LITESHIFT_DB_URL"] = SQLITE_URL
        if uses_postgres_dsn(ds, engine):
            # A sidecar restarted after the cutover finds a promoted SQLite file: it serves
            # from this target instead (never writes the rollback point again).
            env["LITESHIFT_PROMOTION_TARGET_URL_FILE"] = DSN_FILE
    if ds.spec.media.enabled:
        env["LITESHIFT_MEDIA_DB_URL_FILE"] = DSN_FILE
    return [{"name": key, "value": value} for key, value in sorted(env.items())]


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_statefulset(ds: Datastore, engine: str = "sqlite") -> Manifest:
    """The sidecar StatefulSet; `engine` is the engine it serves from now (status.engine)."""
    image = ds.spec.image or DEFAULT_IMAGE
    volume_mounts: list[dict[str, Any]] = [
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "backups", "mountPath": BACKUP_DIR},
        {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the emptyDir under a read-only root
    ]
    volumes: list[dict[str, Any]] = [
        {
            "name": "auth",
            "secret": {
                "secretName": auth_secret_name(ds),
                "defaultMode": 0o440,
                "items": [
                    {"key": "api-token", "path": "api-token"},
                    {"key": "admin-token", "path": "admin-token"},
                ],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if uses_postgres_dsn(ds, engine):
        secret, key = postgres_dsn_secret(ds)
        volume_mounts.append({"name": "postgres-dsn", "mountPath": POSTGRES_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "postgres-dsn",
                "secret": {
                    "secretName": secret,
                    "defaultMode": 0o440,
                    "items": [{"key": key, "path": "dsn"}],
                },
            }
        )
    container = {
        "name": "sidecar",
        "image": image,
        "imagePullPolicy": ds.spec.image_pull_policy,
        "command": ["liteshift"],
        "args": ["serve"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(ds, engine),
        "volumeMounts": volume_mounts,
        "resources": resources_block(ds.spec.resources, DEFAULT_RESOURCES),
        "startupProbe": _probe("/healthz", 2, 60),
        "livenessProbe": _probe("/healthz", 10, 3),
        "readinessProbe": _probe("/readyz", 5, 3),
        "securityContext": container_security_context(),
    }
    reclaim = ds.spec.reclaim_policy
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(ds, sidecar_name(ds), COMPONENT),
        "spec": {
            "replicas": replicas(ds, engine),
            "serviceName": sidecar_name(ds),
            "selector": {"matchLabels": selector_labels(ds, COMPONENT)},
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            # Kubernetes' own PVC cleanup agrees with spec.reclaimPolicy; the delete handler
            # enforces it too, for clusters without the StatefulSet retention policy.
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": reclaim,
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels(ds, COMPONENT),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(PORT),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security_context(SIDECAR_UID),
                    "containers": [container],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [
                volume_claim_template(
                    ds,
                    "data",
                    COMPONENT,
                    ds.spec.sqlite.storage.size,
                    ds.spec.sqlite.storage.storage_class_name,
                ),
                volume_claim_template(
                    ds,
                    "backups",
                    COMPONENT,
                    ds.spec.backup.storage.size,
                    ds.spec.backup.storage.storage_class_name,
                ),
            ],
        },
    }


def build_service(ds: Datastore) -> Manifest:
    """The ClusterIP Service apps use: `endpoint(ds)`."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(ds, sidecar_name(ds), COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(ds, COMPONENT),
            "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
