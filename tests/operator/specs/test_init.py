"""Every generated object validates against the Kubernetes OpenAPI schemas (strict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from liteshift.operator.model import Datastore
from liteshift.operator.reconcile import adopt
from liteshift.operator.specs import build_workloads
from liteshift.operator.specs.secrets import build_auth_secret, build_postgres_secret

MATRIX: dict[str, dict[str, Any]] = {
    "sqlite-only": {},
    "sqlite-tuned": {
        "sqlite": {"storage": {"size": "5Gi", "storageClassName": "fast"}, "synchronous": "NORMAL"},
        "resources": {"requests": {"cpu": "0.5", "memory": "256Mi"}, "limits": {"cpu": 2}},
        "reclaimPolicy": "Delete",
    },
    "managed-postgres": {"replicas": 3, "postgres": {"mode": "managed"}},
    "managed-postgres-media": {"postgres": {"mode": "managed"}, "media": {"enabled": True}},
    "external-postgres": {
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": "pg"}}},
    },
    "external-postgres-media": {
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": "pg"}}},
        "media": {"enabled": True},
        "auth": {"secretRef": {"name": "tokens"}},
    },
}


def objects(spec: dict[str, Any], engine: str) -> list[dict[str, Any]]:
    store = Datastore.parse(
        {"metadata": {"name": "shop", "namespace": "apps", "uid": "0e5c"}, "spec": spec}
    )
    found = [adopt(obj, store) for obj in build_workloads(store, engine)]
    found.append(build_auth_secret(store, "a", "b"))
    if store.spec.postgres.mode == "managed":
        found.append(build_postgres_secret(store, "pw"))
    return found


@pytest.mark.parametrize("version", ["1.30", "1.37"])
@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
@pytest.mark.parametrize("case", sorted(MATRIX))
def test_every_object_validates_strictly(case: str, engine: str, version: str) -> None:
    for obj in objects(MATRIX[case], engine):
        kubernetes_validate.validate(obj, version, strict=True)


def test_children_per_mode() -> None:
    kinds = {
        case: [f"{o['kind']}/{o['metadata']['name']}" for o in objects(spec, "sqlite")]
        for case, spec in MATRIX.items()
    }
    assert kinds["sqlite-only"] == ["Service/shop", "StatefulSet/shop", "Secret/shop-auth"]
    assert kinds["managed-postgres"] == [
        "Service/shop-postgres",
        "StatefulSet/shop-postgres",
        "Service/shop",
        "StatefulSet/shop",
        "Secret/shop-auth",
        "Secret/shop-postgres",
    ]
    assert kinds["external-postgres"] == kinds["sqlite-only"]


def test_a_declared_postgres_is_mounted_as_the_promotion_target() -> None:
    def volumes(spec: dict[str, Any], engine: str = "sqlite") -> list[str]:
        sts = next(o for o in objects(spec, engine) if o["metadata"]["name"] == "shop"
                   and o["kind"] == "StatefulSet")  # fmt: skip
        return [v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]]

    # No Postgres yet: nothing to mount until the promotion made the managed one.
    assert "postgres-dsn" not in volumes(MATRIX["sqlite-only"])
    assert "postgres-dsn" in volumes(MATRIX["sqlite-only"], "postgres")
    # A declared one is the promotion target (LITESHIFT_PROMOTION_TARGET_URL_FILE).
    assert "postgres-dsn" in volumes(MATRIX["managed-postgres"])
    assert "postgres-dsn" in volumes(MATRIX["managed-postgres-media"])
    assert "postgres-dsn" in volumes(MATRIX["external-postgres"])


@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_objects_of_every_example_validate(version: str) -> None:
    root = Path(__file__).resolve().parents[3]
    docs = [
        doc
        for path in sorted((root / "examples").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc["kind"] == "Datastore"
    ]
    assert len(docs) == 3
    for doc in docs:
        for engine in ("sqlite", "postgres"):
            for obj in objects(doc["spec"], engine):
                kubernetes_validate.validate(obj, version, strict=True)
