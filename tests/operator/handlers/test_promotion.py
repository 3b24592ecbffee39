"""The promotion timer end to end: kopf for real against kmock's emulator, a real
`liteshift serve` process (SQLite in tmp), a real Postgres, and a real Prometheus where the
criteria are involved. kmock runs no pods: the Datastores name an external Postgres whose
Secret holds the test database's DSN, and the sidecar is reached through
`PromotionSettings.sidecar_url` (LITESHIFT_SIDECAR_URL)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from liteshift.local.ports import free_port
from liteshift.local.prometheus import start_prometheus
from liteshift.operator.handlers.promotion import BadOperatorSetting, PromotionSettings
from liteshift.operator.model import Datastore
from tests.crds.schema import validate
from tests.operator.cluster import Cluster, wait_for
from tests.operator.promotion_harness import (
    ADMIN,
    API,
    annotate,
    condition,
    create_datastore,
    datastore,
    dsn_secret,
    events,
    operator_with,
    postgres_ids,
    postgres_tables,
    promotion,
    seed,
    status,
    tokens_secret,
)
from tests.operator.sidecar_process import SidecarProcess

TRANSITIONS = ["PromotionStarted", "ReadinessChecks", "Copying", "CatchingUp", "Verifying",
               "CuttingOver", "Promoted"]  # fmt: skip


@pytest.fixture
def sidecar_process(tmp_path: Path) -> Iterator[SidecarProcess]:
    process = SidecarProcess(tmp_path, "shop", "apps")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def sidecar_promotion(process: SidecarProcess) -> dict[str, Any]:
    doc: dict[str, Any] = httpx.get(f"{process.url}/admin/promotion", headers=ADMIN).json()
    return doc


def test_the_annotation_promotes_with_status_and_events_complete(
    bare_cluster: Cluster, sidecar_process: SidecarProcess, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    sidecar_process.add_messages(30)
    settings = PromotionSettings(sidecar_url=sidecar_process.url)
    create_datastore(cluster, "shop", postgres_dsn)
    with operator_with(cluster, settings):
        wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", message="Idle")
        annotate(cluster, "shop", "liteshift.io/promote", "now")
        wait_for(lambda: promotion(cluster, "shop").get("state") == "Promoted", timeout=60,
                 message="Promoted")  # fmt: skip
        # The next reconcile points the sidecar's StatefulSet at Postgres.
        env = wait_for(lambda: _postgres_env(cluster), timeout=20, message="StatefulSet env")
        wait_for(lambda: all(events(cluster, "shop", r) for r in TRANSITIONS), message="Events")
        live = cluster.get("Datastore", "shop") or {}

    assert env["LITESHIFT_DB_URL_FILE"] == "/etc/liteshift/postgres/dsn"
    done = live["status"]["promotion"]
    assert done["trigger"] == "annotation"
    assert done["attempt"] == 1
    assert done["target"] == "external"
    assert done["reason"] == "Promoted"
    assert 0 < done["writePauseSeconds"] < 1
    assert done["rowsCopied"] >= 30
    assert done["rollbackPoint"] == "/data/liteshift.db"
    assert {t["name"] for t in done["tables"]} >= {"messages", "events", "proposals"}
    assert all(t["verified"] for t in done["tables"])
    messages = next(t for t in done["tables"] if t["name"] == "messages")
    assert messages["postgresRows"] == 30
    for key in ("startedAt", "completedAt", "stateEnteredAt", "lastEvaluatedAt", "cooldownUntil"):
        assert key in done, key
    assert live["status"]["engine"] == "postgres"
    # Consumed: left in place it would start another attempt after a rollback.
    assert "liteshift.io/promote" not in (live["metadata"].get("annotations") or {})
    promoted = condition(cluster, "shop", "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "ServingFromPostgres")
    # Every transition is one Event, in order.
    for reason in TRANSITIONS:
        assert len(events(cluster, "shop", reason)) == 1, reason
    started = events(cluster, "shop", "PromotionStarted")[0]["message"]
    assert "trigger annotation" in started
    final = events(cluster, "shop", "Promoted")[0]["message"]
    assert f"write pause {done['writePauseSeconds'] * 1000:.1f} ms" in final
    # What a real API server would keep: every field fits the CRD's status schema.
    assert validate("Datastore", _as_applied(live)) == []

    # The sidecar serves from Postgres: the rows are there, and new writes land there.
    admin_status = httpx.get(f"{sidecar_process.url}/admin/status", headers=ADMIN).json()
    assert admin_status["engine"] == "postgres"
    assert len(postgres_ids(postgres_dsn, "messages")) == 30
    created = httpx.post(
        f"{sidecar_process.url}/v1/messages",
        headers=API,
        json={"conversation_id": "c", "role": "user", "content": "after"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["id"] in postgres_ids(postgres_dsn, "messages")


def test_policy_off_never_promotes(
    bare_cluster: Cluster, sidecar_process: SidecarProcess, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    settings = PromotionSettings(sidecar_url=sidecar_process.url, evaluation_interval=0.5)
    # Both manual triggers at once: policy off refuses them all.
    create_datastore(cluster, "shop", postgres_dsn, engine="postgres",
                     promotion={"policy": "off"})  # fmt: skip
    annotate(cluster, "shop", "liteshift.io/promote", "now")
    with operator_with(cluster, settings):
        wait_for(lambda: condition(cluster, "shop", "PromotionRecommended").get("reason")
                 == "PolicyOff", message="an evaluation")  # fmt: skip
        time.sleep(4)  # several ticks and evaluations
        live = cluster.get("Datastore", "shop") or {}
    assert live["status"]["promotion"]["state"] == "Idle"
    assert live["status"]["engine"] == "sqlite"
    metrics = condition(cluster, "shop", "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("Unknown", "PolicyOff")
    assert events(cluster, "shop", "PromotionStarted") == []
    assert live["metadata"]["annotations"]["liteshift.io/promote"] == "now"  # not consumed
    assert sidecar_promotion(sidecar_process)["state"] == "Idle"
    assert postgres_tables(postgres_dsn) == set()  # nothing was ever migrated there


def test_prometheus_without_answers_never_promotes(
    bare_cluster: Cluster, sidecar_process: SidecarProcess, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    settings = PromotionSettings(sidecar_url=sidecar_process.url, evaluation_interval=0.5)
    nothing_listens = f"http://127.0.0.1:{free_port()}"
    # A real Prometheus that scrapes nothing: it answers, with no data for this datastore.
    prometheus = start_prometheus([])
    try:
        thresholds = {"lockWaitP95Seconds": 0, "writeLatencyP99Seconds": 0,
                      "busyErrorsPerSecond": 0, "databaseSize": 0}  # fmt: skip
        urls = {"shop": nothing_listens, "cart": prometheus.url}
        for name, url in urls.items():
            create_datastore(
                cluster,
                name,
                postgres_dsn,
                promotion={"policy": "auto", "prometheus": {"url": url}, "window": "10s",
                           "cooldown": "10s", "thresholds": thresholds},
            )  # fmt: skip
        with operator_with(cluster, settings):
            for name, reason in (("shop", "PrometheusUnreachable"), ("cart", "NoData")):
                metrics = wait_for(
                    functools.partial(_metrics_with_reason, cluster, name, reason),
                    message=f"MetricsAvailable of {name}",
                )
                assert metrics["status"] == "False"
                assert f"apps/{name}" in metrics["message"] or urls[name] in metrics["message"]
            time.sleep(3)  # several evaluations: still nothing happens
            for name in ("shop", "cart"):
                assert promotion(cluster, name)["state"] == "Idle"
                criteria = {c["name"]: c for c in promotion(cluster, name)["criteria"]}
                assert not criteria["lockWaitP95"]["sustained"]
                assert events(cluster, name, "PromotionStarted") == []
                warned = events(cluster, name, "PromotionEvaluated")
                assert warned and warned[0]["type"] == "Warning"
                assert len(warned) == 1  # once, not at every evaluation
            assert "unreachable" in condition(cluster, "shop", "MetricsAvailable")["message"]
    finally:
        prometheus.stop()
    assert sidecar_promotion(sidecar_process)["state"] == "Idle"
    assert status(cluster, "shop")["engine"] == "sqlite"


def test_rollback_annotation_mid_copy_returns_to_sqlite(
    bare_cluster: Cluster, tmp_path: Path, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    process = SidecarProcess(tmp_path, "shop", "apps")
    # One row per COPY batch: a copy of seconds, long enough to interrupt.
    process.env["LITESHIFT_PROMOTION_BATCH_ROWS"] = "1"
    seed(tmp_path / "data" / "liteshift.db", 40_000)
    process.start()
    try:
        settings = PromotionSettings(sidecar_url=process.url)
        create_datastore(cluster, "shop", postgres_dsn)
        with operator_with(cluster, settings):
            wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", message="Idle")
            annotate(cluster, "shop", "liteshift.io/promote", "now")
            # Rows are moving (the sidecar's own report: the operator's status may lag a tick).
            wait_for(lambda: _copying(process), timeout=30, message="the copy under way")
            annotate(cluster, "shop", "liteshift.io/rollback", "now")
            seen: list[str] = []
            wait_for(lambda: _saw(seen, promotion(cluster, "shop").get("state"))
                     in ("RolledBack", "Promoted"), timeout=60, message="the outcome")  # fmt: skip
            assert seen[-1] == "RolledBack", (seen, promotion(cluster, "shop"),
                                              events(cluster, "shop"))  # fmt: skip
            wait_for(lambda: events(cluster, "shop", "RolledBack"), message="the Event")
            live = cluster.get("Datastore", "shop") or {}
            time.sleep(2)  # the rollback request is consumed: nothing starts again
            assert promotion(cluster, "shop")["state"] == "RolledBack"
        done = live["status"]["promotion"]
        assert done["reason"] == "RollbackRequested"
        assert "liteshift.io/rollback=now" in done["message"]
        assert "rolledBackAt" in done and "completedAt" not in done
        assert live["status"]["engine"] == "sqlite"
        promoted = condition(cluster, "shop", "Promoted")
        assert (promoted["status"], promoted["reason"]) == ("False", "RollbackRequested")
        annotations = live["metadata"].get("annotations") or {}
        assert "liteshift.io/rollback" not in annotations
        assert "liteshift.io/promote" not in annotations
        assert events(cluster, "shop", "RolledBack")[0]["type"] == "Warning"
        assert events(cluster, "shop", "Promoted") == []
        # SQLite is still the primary: the sidecar rolled back and keeps writing SQLite.
        doc = sidecar_promotion(process)
        assert doc["state"] == "RolledBack"
        assert doc["error"]["error"] == "aborted"
        assert httpx.get(f"{process.url}/admin/status", headers=ADMIN).json()["engine"] == "sqlite"
        process.add_messages(1)
        assert postgres_ids(postgres_dsn, "messages") == set()  # the target was emptied
        assert validate("Datastore", _as_applied(live)) == []
    finally:
        process.stop()


def _copying(process: SidecarProcess) -> bool:
    doc = sidecar_promotion(process)
    copied = doc.get("rows_copied") or {}
    return bool(doc["state"] == "Copying" and sum(copied.values()) > 0)


def _metrics_with_reason(cluster: Cluster, name: str, reason: str) -> dict[str, Any] | None:
    found = condition(cluster, name, "MetricsAvailable")
    return found if found.get("reason") == reason else None


def _saw(seen: list[str], state: object) -> object:
    if not seen or seen[-1] != state:
        seen.append(str(state))
    return state


def _postgres_env(cluster: Cluster) -> dict[str, str] | None:
    sts = cluster.get("StatefulSet", "shop") or {}
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container["env"]}
    return env if "LITESHIFT_DB_URL_FILE" in env else None


def _as_applied(live: dict[str, object]) -> dict[str, object]:
    """The object as a user would have applied it, plus the status the operator wrote."""
    meta = live["metadata"]
    assert isinstance(meta, dict)
    return {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": live["spec"],
        "status": live["status"],
    }


def test_an_unreachable_target_rolls_back_with_the_reason(
    bare_cluster: Cluster, sidecar_process: SidecarProcess
) -> None:
    cluster = bare_cluster
    sidecar_process.add_messages(3)
    nowhere = f"postgresql://app:secret@127.0.0.1:{free_port()}/app"
    create_datastore(cluster, "shop", nowhere)
    with operator_with(cluster, PromotionSettings(sidecar_url=sidecar_process.url)):
        wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", message="Idle")
        annotate(cluster, "shop", "liteshift.io/promote", "now")
        wait_for(lambda: promotion(cluster, "shop").get("state") == "RolledBack", timeout=60,
                 message="RolledBack")  # fmt: skip
        wait_for(lambda: events(cluster, "shop", "RolledBack"), message="the Event")
        live = cluster.get("Datastore", "shop") or {}
    done = live["status"]["promotion"]
    promoted = condition(cluster, "shop", "Promoted")
    assert promoted["status"] == "False"
    assert promoted["reason"] == done["reason"] != "RollbackRequested"
    assert "SQLite is still the primary" in promoted["message"]
    assert "secret" not in promoted["message"]  # the sidecar redacts the password
    assert "secret" not in str(events(cluster, "shop"))
    assert live["status"]["engine"] == "sqlite"
    assert httpx.get(f"{sidecar_process.url}/admin/status", headers=ADMIN).json()["engine"] == (
        "sqlite"
    )
    sidecar_process.add_messages(1)  # SQLite still takes writes


def test_without_a_declared_postgres_the_promotion_provisions_the_managed_one(
    bare_cluster: Cluster, sidecar_process: SidecarProcess, postgres_dsn: str
) -> None:
    # kmock runs no pods: the test plays the StatefulSet controller (readyReplicas) and
    # pre-creates the generated Secret with the test database's DSN (the operator keeps an
    # existing generated Secret, as after a re-created Datastore).
    cluster = bare_cluster
    sidecar_process.add_messages(5)
    cluster.create("Secret", tokens_secret("shop-tokens"))
    generated = dsn_secret("shop-postgres", postgres_dsn)
    generated["metadata"]["labels"] = {"liteshift.io/datastore": "shop"}
    cluster.create("Secret", generated)
    spec = datastore("shop")["spec"]
    del spec["postgres"]  # postgres.mode none: no Postgres until the promotion
    cluster.create(
        "Datastore",
        {"apiVersion": "liteshift.io/v1alpha1", "kind": "Datastore",
         "metadata": {"name": "shop", "namespace": "apps"},
         "spec": {**spec, "engine": "postgres"}},
    )  # fmt: skip
    with operator_with(cluster, PromotionSettings(sidecar_url=sidecar_process.url)):
        wait_for(lambda: events(cluster, "shop", "WaitingForPostgres"), message="waiting")
        assert promotion(cluster, "shop")["state"] == "ProvisioningPostgres"
        assert promotion(cluster, "shop")["trigger"] == "engine"
        statefulset = cluster.get("StatefulSet", "shop-postgres")
        assert statefulset is not None
        assert cluster.get("Service", "shop-postgres") is not None
        cluster.patch("StatefulSet", "shop-postgres", {"status": {"readyReplicas": 1}})
        wait_for(lambda: promotion(cluster, "shop").get("state") == "Promoted", timeout=60,
                 message="Promoted")  # fmt: skip
        sts = wait_for(lambda: _postgres_env(cluster) and cluster.get("StatefulSet", "shop"),
                       message="the sidecar pointed at Postgres")  # fmt: skip
    assert promotion(cluster, "shop")["target"] == "managed"
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["postgres-dsn"]["secret"]["secretName"] == "shop-postgres"
    assert len(postgres_ids(postgres_dsn, "messages")) == 5


def test_settings_from_the_operator_environment() -> None:
    def store(spec: dict[str, Any]) -> Datastore:
        return Datastore.parse({"metadata": {"name": "shop", "namespace": "apps"}, "spec": spec})

    default = PromotionSettings.from_env({})
    assert default.evaluation_interval == 30.0
    assert default.url_for(store({})) == "http://shop.apps.svc:8080"
    assert default.prometheus_for(store({})) is None
    env = {
        "LITESHIFT_PROMOTION_INTERVAL": "2.5",
        "LITESHIFT_PROMETHEUS_URL": "http://prometheus.monitoring:9090",
        "LITESHIFT_SIDECAR_URL": "http://127.0.0.1:18080/{namespace}/{name}",
    }
    settings = PromotionSettings.from_env(env)
    assert settings.evaluation_interval == 2.5
    assert settings.url_for(store({})) == "http://127.0.0.1:18080/apps/shop"
    fallback = settings.prometheus_for(store({}))
    assert fallback is not None and fallback.url == "http://prometheus.monitoring:9090"
    own = settings.prometheus_for(store({"promotion": {"prometheus": {"url": "http://p:9090"}}}))
    assert own is not None and own.url == "http://p:9090"  # the Datastore's own wins
    for bad in ("abc", "0", "-1", "inf"):
        with pytest.raises(BadOperatorSetting) as refused:
            PromotionSettings.from_env({"LITESHIFT_PROMOTION_INTERVAL": bad})
        assert str(refused.value) == (
            f"LITESHIFT_PROMOTION_INTERVAL: {bad!r} is not a number of seconds above 0"
        )
