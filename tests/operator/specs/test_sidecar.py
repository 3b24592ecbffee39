"""The sidecar StatefulSet and Service, compared as dicts."""

from __future__ import annotations

from typing import Any

from liteshift.operator.image import DEFAULT_IMAGE
from liteshift.operator.model import Datastore
from liteshift.operator.specs.sidecar import build_service, build_statefulset, endpoint
from liteshift.store.urls import parse_url


def ds(spec: dict[str, Any] | None = None) -> Datastore:
    return Datastore.parse(
        {"metadata": {"name": "shop", "namespace": "apps", "uid": "u-1"}, "spec": spec or {}}
    )


LABELS = {
    "app.kubernetes.io/name": "liteshift",
    "app.kubernetes.io/instance": "shop",
    "app.kubernetes.io/component": "sidecar",
    "app.kubernetes.io/managed-by": "liteshift-operator",
    "liteshift.io/datastore": "shop",
}
SELECTOR = {key: LABELS[key] for key in list(LABELS)[:3]}


def container(sts: dict[str, Any]) -> dict[str, Any]:
    (only,) = sts["spec"]["template"]["spec"]["containers"]
    return dict(only)


def env(sts: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(sts)["env"]}


def test_service() -> None:
    assert build_service(ds()) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "shop", "namespace": "apps", "labels": LABELS},
        "spec": {
            "type": "ClusterIP",
            "selector": SELECTOR,
            "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    assert endpoint(ds()) == "http://shop.apps.svc:8080"


def test_sqlite_only_environment_follows_the_configuration_contract() -> None:
    assert env(build_statefulset(ds())) == {
        "IMAGE_PROCESSING_ENABLED": "false",
        "LITESHIFT_ADMIN_TOKEN_FILE": "/etc/liteshift/auth/admin-token",
        "LITESHIFT_API_TOKEN_FILE": "/etc/liteshift/auth/api-token",
        "LITESHIFT_BACKUP_DIR": "/backups",
        "LITESHIFT_DATASTORE": "shop",
        "LITESHIFT_DB_URL": "sqlite:///data/liteshift.db",
        "LITESHIFT_HOST": "0.0.0.0",
        "LITESHIFT_LOG_FORMAT": "json",
        "LITESHIFT_MIGRATE_ON_START": "true",
        "LITESHIFT_NAMESPACE": "apps",
        "LITESHIFT_PORT": "8080",
        "LITESHIFT_SQLITE_SYNCHRONOUS": "FULL",
    }


def test_container_is_hardened_and_probed() -> None:
    sts = build_statefulset(ds())
    c = container(sts)
    assert c["image"] == DEFAULT_IMAGE
    assert c["command"] == ["liteshift"]
    assert c["args"] == ["serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert c["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert c["volumeMounts"] == [
        {"name": "data", "mountPath": "/data"},
        {"name": "backups", "mountPath": "/backups"},
        {"name": "auth", "mountPath": "/etc/liteshift/auth", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    pod = sts["spec"]["template"]
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8080",
        "prometheus.io/path": "/metrics",
    }
    assert pod["spec"]["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["spec"]["volumes"] == [
        {
            "name": "auth",
            "secret": {
                "secretName": "shop-auth",
                "defaultMode": 0o440,
                "items": [
                    {"key": "api-token", "path": "api-token"},
                    {"key": "admin-token", "path": "admin-token"},
                ],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]


def test_volume_claim_templates_and_reclaim_policy() -> None:
    sts = build_statefulset(
        ds(
            {
                "sqlite": {"storage": {"size": "5Gi", "storageClassName": "fast"}},
                "backup": {"storage": {"size": "20Gi"}},
                "reclaimPolicy": "Delete",
            }
        )
    )
    assert sts["spec"]["volumeClaimTemplates"] == [
        {
            "metadata": {"name": "data", "labels": LABELS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
                "storageClassName": "fast",
            },
        },
        {
            "metadata": {"name": "backups", "labels": LABELS},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "20Gi"}},
            },
        },
    ]
    assert sts["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Delete",
        "whenScaled": "Retain",
    }
    assert sts["spec"]["selector"] == {"matchLabels": SELECTOR}


def test_replicas_stay_one_until_serving_from_postgres() -> None:
    store = ds({"replicas": 3, "postgres": {"mode": "managed"}})
    assert build_statefulset(store, "sqlite")["spec"]["replicas"] == 1
    promoted = build_statefulset(store, "postgres")
    assert promoted["spec"]["replicas"] == 3
    assert "LITESHIFT_DB_URL" not in env(promoted)
    assert env(promoted)["LITESHIFT_DB_URL_FILE"] == "/etc/liteshift/postgres/dsn"


def test_media_mounts_the_external_dsn_secret() -> None:
    store = ds(
        {
            "postgres": {
                "mode": "external",
                "external": {"dsnSecretRef": {"name": "billing-pg", "key": "url"}},
            },
            "media": {"enabled": True},
            "auth": {"secretRef": {"name": "my-tokens"}},
            "image": "registry.example/liteshift:dev",
        }
    )
    sts = build_statefulset(store)
    assert env(sts)["IMAGE_PROCESSING_ENABLED"] == "true"
    assert env(sts)["LITESHIFT_MEDIA_DB_URL_FILE"] == "/etc/liteshift/postgres/dsn"
    assert env(sts)["LITESHIFT_DB_URL"] == "sqlite:///data/liteshift.db"
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["postgres-dsn"] == {
        "name": "postgres-dsn",
        "secret": {
            "secretName": "billing-pg",
            "defaultMode": 0o440,
            "items": [{"key": "url", "path": "dsn"}],
        },
    }
    assert volumes["auth"]["secret"]["secretName"] == "my-tokens"
    assert container(sts)["image"] == "registry.example/liteshift:dev"


def test_builders_are_pure() -> None:
    store = ds({"postgres": {"mode": "managed"}, "media": {"enabled": True}})
    assert build_statefulset(store) == build_statefulset(store)
    assert build_service(store) == build_service(store)


def test_sqlite_url_names_the_file_on_the_data_volume() -> None:
    # The store's own URL parser is the judge of what the sidecar will open.
    parsed = parse_url(env(build_statefulset(ds()))["LITESHIFT_DB_URL"])
    assert (parsed.engine, parsed.target) == ("sqlite", "/data/liteshift.db")


def test_a_declared_postgres_is_the_promotion_target_while_on_sqlite() -> None:
    for spec, secret, key in (
        ({"postgres": {"mode": "managed"}}, "shop-postgres", "dsn"),
        (
            {"postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": "pg",
                                                                             "key": "url"}}}},
            "pg",
            "url",
        ),
    ):  # fmt: skip
        sts = build_statefulset(ds(spec), "sqlite")
        assert env(sts)["LITESHIFT_DB_URL"] == "sqlite:///data/liteshift.db"
        # After a cutover, a restarted sidecar finds the promoted SQLite file and serves
        # from this target instead of refusing to start.
        assert env(sts)["LITESHIFT_PROMOTION_TARGET_URL_FILE"] == "/etc/liteshift/postgres/dsn"
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        assert volumes["postgres-dsn"]["secret"]["secretName"] == secret
        assert volumes["postgres-dsn"]["secret"]["items"] == [{"key": key, "path": "dsn"}]
    assert "LITESHIFT_PROMOTION_TARGET_URL_FILE" not in env(build_statefulset(ds()))


def test_promoted_without_a_declared_postgres_serves_from_the_managed_one() -> None:
    # postgres.mode none: the promotion provisioned the managed Postgres and its Secret.
    sts = build_statefulset(ds({"replicas": 2}), "postgres")
    assert env(sts)["LITESHIFT_DB_URL_FILE"] == "/etc/liteshift/postgres/dsn"
    assert "LITESHIFT_DB_URL" not in env(sts)
    assert "LITESHIFT_PROMOTION_TARGET_URL_FILE" not in env(sts)
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["postgres-dsn"]["secret"]["secretName"] == "shop-postgres"
    assert sts["spec"]["replicas"] == 2
