"""Provisioning the promotion's target against kmock's emulator (no operator running)."""

from __future__ import annotations

import base64

from liteshift.operator.kube import Kube
from liteshift.operator.model import Datastore
from liteshift.operator.provision import Target, as_managed, provision, read_dsn, target_mode
from tests.operator.cluster import NAMESPACE, Cluster


def datastore(spec: dict[str, object]) -> Datastore:
    return Datastore.parse(
        {"metadata": {"name": "shop", "namespace": NAMESPACE, "uid": "uid-shop"}, "spec": spec}
    )


def test_mode_none_gets_the_managed_postgres_at_promotion_time(bare_cluster: Cluster) -> None:
    store = datastore({})
    assert target_mode(store) == "managed"
    assert as_managed(store).spec.postgres.mode == "managed"
    assert store.spec.postgres.mode == "none"  # the Datastore itself is not changed
    kube = Kube.from_url(bare_cluster.url)
    try:
        first = provision(kube, store)
        assert first.url is None
        assert first.waiting is not None and "'shop-postgres'" in first.waiting
        statefulset = bare_cluster.get("StatefulSet", "shop-postgres")
        assert statefulset is not None
        assert statefulset["metadata"]["ownerReferences"][0]["uid"] == "uid-shop"
        assert bare_cluster.get("Service", "shop-postgres") is not None
        secret = bare_cluster.get("Secret", "shop-postgres")
        assert secret is not None
        dsn = secret["stringData"]["dsn"]
        assert dsn.startswith("postgresql://liteshift:")
        assert "@shop-postgres.apps.svc:5432/liteshift" in dsn

        # Ready: the DSN from the generated Secret (created once, never regenerated).
        bare_cluster.patch("StatefulSet", "shop-postgres", {"status": {"readyReplicas": 1}})
        assert provision(kube, store) == Target("managed", url=dsn)
        assert (bare_cluster.get("Secret", "shop-postgres") or {})["stringData"]["dsn"] == dsn
    finally:
        kube.close()


def test_external_waits_for_its_secret(bare_cluster: Cluster) -> None:
    store = datastore(
        {"postgres": {"mode": "external",
                      "external": {"dsnSecretRef": {"name": "pg", "key": "url"}}}}
    )  # fmt: skip
    kube = Kube.from_url(bare_cluster.url)
    try:
        waiting = provision(kube, store)
        assert waiting == Target(
            "external",
            waiting="waiting: the Secret 'pg' holding the Postgres DSN does not exist",
        )
        assert bare_cluster.get("StatefulSet", "shop-postgres") is None  # nothing to run
        bare_cluster.create(
            "Secret",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg"},
             "data": {"other": base64.b64encode(b"x").decode()}},
        )  # fmt: skip
        assert provision(kube, store).waiting == (
            "waiting: the Secret 'pg' has no key 'url' with the DSN"
        )
        dsn = "postgresql://app:pw@db.example:5432/app"
        bare_cluster.patch("Secret", "pg", {"data": {"url": base64.b64encode(dsn.encode())
                                                     .decode()}})  # fmt: skip
        assert provision(kube, store) == Target("external", url=dsn)
        assert read_dsn(kube, store) == dsn
    finally:
        kube.close()
