"""Issue 6's headline, on loopback with only real parts: a sidecar process on SQLite under an
HTTP write load, a real Prometheus scraping it, a real Postgres, and kopf against kmock's
emulator. A low lock-wait threshold and a short window make the load itself the reason: the
operator sees the criterion sustained, promotes on its own (policy auto), and the test checks
that no client request failed, every acknowledged write is in Postgres, the SQLite rollback
point and Postgres hold the same data (checksums), the write pause in status is under a
second, the sidecar serves from Postgres, and status and Events tell the whole story."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from liteshift.local.postgres import start_postgres
from liteshift.local.prometheus import PrometheusServer, start_prometheus
from liteshift.operator.handlers.promotion import PromotionSettings
from liteshift.promotion.loose import scan
from liteshift.promotion.online import promoted_marker
from liteshift.promotion.verify import verify
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot
from tests.crds.schema import validate
from tests.operator.cluster import Cluster, running_emulator, wait_for
from tests.operator.promotion_harness import (
    ADMIN,
    API,
    condition,
    create_datastore,
    events,
    operator_with,
    promotion,
    seeded_sidecar,
)
from tests.operator.sidecar_process import SidecarProcess
from tests.promotion.load import (
    WriteLoad,
    assert_acked_in_postgres,
    postgres_ids,
    rows_moving,
    wait_for_promotion,
)

TRANSITIONS = ["PromotionStarted", "ReadinessChecks", "Copying", "CatchingUp", "Verifying",
               "CuttingOver", "Promoted"]  # fmt: skip
SEEDED = 2000


@pytest.fixture
def bare_cluster() -> Iterator[Cluster]:
    """kmock's emulator; each test runs its own operator in it."""
    with running_emulator() as cluster:
        yield cluster


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[SidecarProcess]:
    process = seeded_sidecar(tmp_path, SEEDED)
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def prometheus(sidecar: SidecarProcess) -> Iterator[PrometheusServer]:
    server = start_prometheus([f"127.0.0.1:{sidecar.port}"], scrape_interval="1s")
    try:
        yield server
    finally:
        server.stop()


def _create_load_bound(
    cluster: Cluster, dsn: str, prometheus: PrometheusServer, **promotion: str
) -> None:
    """Create the Datastore shop with criteria on (queried from `prometheus`) and a lock-wait
    threshold that any write waiting for the writer at all exceeds: the load alone is above
    it. `promotion` adds the policy, window, cooldown."""
    create_datastore(
        cluster,
        "shop",
        dsn,
        promotion={
            **promotion,
            "prometheus": {"url": prometheus.url},
            "thresholds": {"lockWaitP95Seconds": 0.000001},
        },
    )


def sqlite_rows(db: Path) -> dict[str, set[str]]:
    """Ids per load table in the SQLite rollback point."""
    with SqliteSnapshot(str(db)) as snapshot:
        conn = snapshot.conn
        return {
            table: {str(row[0]) for row in conn.execute(f"SELECT id FROM {table}")}
            for table in ("messages", "events")
        }


@pytest.mark.slow
def test_the_load_itself_promotes_the_store_online(
    bare_cluster: Cluster,
    sidecar: SidecarProcess,
    prometheus: PrometheusServer,
    postgres_dsn: str,
    tmp_path: Path,
) -> None:
    cluster = bare_cluster
    settings = PromotionSettings(sidecar_url=sidecar.url, evaluation_interval=1.0)
    _create_load_bound(
        cluster, postgres_dsn, prometheus, policy="auto", window="15s", cooldown="1m"
    )
    load_began = datetime.now(UTC)
    with WriteLoad(sidecar.url, headers=API, threads=6) as load, operator_with(cluster, settings):
        load.wait_for_writes(50)
        wait_for(
            lambda: promotion(cluster, "shop").get("state") not in (None, "Idle"),
            timeout=120,
            message="the operator deciding to promote",
        )
        started = promotion(cluster, "shop")
        wait_for(lambda: promotion(cluster, "shop").get("state") in ("Promoted", "RolledBack"),
                 timeout=180, message="the outcome")  # fmt: skip
        # Writes keep landing after the cutover, now in Postgres.
        load.wait_for_writes(50)
        wait_for(lambda: all(events(cluster, "shop", r) for r in TRANSITIONS), message="Events")
    live = cluster.get("Datastore", "shop") or {}
    done = live["status"]["promotion"]
    assert done["state"] == "Promoted", done

    print(  # the figures of this run (pytest -s shows them)
        f"promoted: write pause {done['writePauseSeconds'] * 1000:.1f} ms,"
        f" {done['catchUpPasses']} catch-up passes, {done['rowsCopied']} rows copied,"
        f" {load.total} acknowledged writes, {len(load.failures)} failed"
    )
    # Zero failed client requests during the whole run.
    assert load.failures == []
    assert load.total > 100

    # Status tells the story: the trigger, the criterion and its values, the pause.
    assert started["trigger"] == "criteria"
    # Nothing promotes before the criterion held for the whole window (15 s).
    began = datetime.fromisoformat(done["startedAt"].replace("Z", "+00:00"))
    assert began - load_began >= timedelta(seconds=15)
    assert done["trigger"] == "criteria"
    criteria = {c["name"]: c for c in done["criteria"]}
    assert criteria["lockWaitP95"]["sustained"] is True
    assert criteria["lockWaitP95"]["observed"] > 0.000001
    assert "lock_wait" in criteria["lockWaitP95"]["query"]
    assert 0 < done["writePauseSeconds"] < 1
    assert all(t["verified"] for t in done["tables"])
    assert done["rowsCopied"] >= SEEDED
    assert live["status"]["engine"] == "postgres"
    metrics = condition(cluster, "shop", "MetricsAvailable")
    assert (metrics["status"], metrics["reason"]) == ("True", "QueriesAnswered")
    promoted = condition(cluster, "shop", "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("True", "ServingFromPostgres")
    for reason in TRANSITIONS:
        assert len(events(cluster, "shop", reason)) == 1, reason
    assert "trigger criteria" in events(cluster, "shop", "PromotionStarted")[0]["message"]
    evaluated = [e["message"] for e in events(cluster, "shop", "PromotionEvaluated")]
    assert any("CriteriaSustained" in m and "lockWaitP95=" in m for m in evaluated), evaluated
    assert validate("Datastore", _as_applied(live)) == []

    # The sidecar serves from Postgres, in-process (same process, no restart).
    admin = httpx.get(f"{sidecar.url}/admin/status", headers=ADMIN).json()
    assert admin["engine"] == "postgres"
    assert sidecar.process is not None and sidecar.process.poll() is None

    assert_acked_in_postgres(load, postgres_dsn)
    sidecar.stop()

    # The SQLite file is the rollback point: marked, and equal to Postgres as of the cutover.
    db = tmp_path / "data" / "liteshift.db"
    assert promoted_marker(str(db)) is not None
    before = sqlite_rows(db)
    after_cutover: dict[str, set[str]] = {}
    for table in ("messages", "events"):
        in_postgres = postgres_ids(postgres_dsn, table)
        assert before[table] <= in_postgres, f"{table}: rows of the rollback point missing"
        after_cutover[table] = in_postgres - before[table]
        # Rows only Postgres has were all written through the API after the cutover.
        assert after_cutover[table] <= set(load.acked[table])
    assert sum(len(ids) for ids in after_cutover.values()) > 0
    _drop(postgres_dsn, after_cutover)
    with SqliteSnapshot(str(db)) as snapshot:
        source = scan(snapshot, DOMAIN_TABLES).checksums
    report = verify(postgres_dsn, source, DOMAIN_TABLES)
    assert report.ok, report


def _drop(dsn: str, rows: dict[str, set[str]]) -> None:
    """Remove the rows written after the cutover, so Postgres is the cutover's state again."""
    with psycopg.connect(dsn) as conn:
        for table, ids in rows.items():
            assert table in ("messages", "events")
            conn.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [list(ids)])


def _as_applied(live: dict[str, Any]) -> dict[str, Any]:
    meta = live["metadata"]
    return {
        "apiVersion": live["apiVersion"],
        "kind": live["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": live["spec"],
        "status": live["status"],
    }


# --- the operator SIGKILLed mid-promotion ---------------------------------------------------


class OperatorProcess:
    """`liteshift operator` as a real process, logged in to the emulator by kubeconfig."""

    def __init__(self, tmp_path: Path, cluster_url: str, sidecar_url: str) -> None:
        self.kubeconfig = tmp_path / "kubeconfig"
        self.kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "emulator", "cluster": {"server": cluster_url}}],
                    "users": [{"name": "tester", "user": {"token": "not-checked"}}],
                    "contexts": [{"name": "emulator", "context": {"cluster": "emulator",
                                                                  "user": "tester"}}],
                    "current-context": "emulator",
                }
            )
        )  # fmt: skip
        self.log = tmp_path / "operator.log"
        self.env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "LITESHIFT_DRIFT_INTERVAL": "1",
            "LITESHIFT_PROMOTION_INTERVAL": "1",
            "LITESHIFT_SIDECAR_URL": sidecar_url,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "liteshift"), "operator", "--liveness", "",
                 "--log-format", "text"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


IN_FLIGHT = ("Copying", "CatchingUp", "Verifying")


def _copy_over(doc: dict[str, Any]) -> bool:
    return doc["state"] not in ("Idle", "ReadinessChecks", "Copying")


@pytest.mark.slow
def test_an_operator_killed_mid_promotion_resumes_from_status(
    bare_cluster: Cluster, tmp_path: Path, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    # One row per COPY batch: the data moves for seconds, long enough to kill the operator.
    sidecar = seeded_sidecar(tmp_path, 30_000, batch_rows=1)
    sidecar.start()
    operator = OperatorProcess(tmp_path, cluster.url, sidecar.url)
    try:
        create_datastore(cluster, "shop", postgres_dsn)
        operator.start()
        with WriteLoad(sidecar.url, headers=API, threads=6) as load:
            wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", timeout=60,
                     message="the operator's first reconcile")  # fmt: skip
            cluster.patch(
                "Datastore", "shop", {"metadata": {"annotations": {"liteshift.io/promote": "now"}}}
            )
            # The operator dies while the sidecar catches up (polled without pause: on loopback
            # the catch-up lasts a fraction of a second, shorter than the operator's tick).
            during = wait_for_promotion(sidecar.url, _copy_over, headers=ADMIN, pause=0)["state"]
            operator.kill()
            killed_in = promotion(cluster, "shop")["state"]
            assert during in ("CatchingUp", "Verifying"), during
            assert killed_in in ("ReadinessChecks", *IN_FLIGHT), killed_in
            # With the operator gone the sidecar carries on; status stays where it was.
            time.sleep(3)
            assert promotion(cluster, "shop")["state"] == killed_in
            operator.start()
            wait_for(lambda: promotion(cluster, "shop").get("state") in ("Promoted", "RolledBack"),
                     timeout=120, message="the resumed promotion's outcome")  # fmt: skip
            load.wait_for_writes(20)
            # Every transition has its Event, except maybe the one the killed operator made
            # last: kopf posts Events from a background queue, so a SIGKILL right after a
            # tick can drop that tick's Event (Kubernetes Events are best effort; the status
            # is the record, and it was checked above).
            wait_for(lambda: all(events(cluster, "shop", r) for r in TRANSITIONS if r != killed_in),
                     message="Events")  # fmt: skip
        live = cluster.get("Datastore", "shop") or {}
        done = live["status"]["promotion"]
        print(f"operator killed while the sidecar was {during}, status {killed_in};"
              f" resumed to {done['state']}")  # fmt: skip
        assert done["state"] == "Promoted", done
        assert done["attempt"] == 1  # resumed, not started over
        assert 0 < done["writePauseSeconds"] < 1
        assert live["status"]["engine"] == "postgres"
        assert load.failures == []
        assert_acked_in_postgres(load, postgres_dsn)
        # The transitions after the kill (Events are named after the state entered) were
        # recorded once, by the new operator.
        after = TRANSITIONS[TRANSITIONS.index(killed_in) + 1 :]
        for reason in after:
            assert len(events(cluster, "shop", reason)) == 1, reason
    finally:
        operator.stop()
        sidecar.stop()
    db = tmp_path / "data" / "liteshift.db"
    assert promoted_marker(str(db)) is not None
    before = sqlite_rows(db)
    extra = {t: postgres_ids(postgres_dsn, t) - before[t] for t in ("messages", "events")}
    _drop(postgres_dsn, extra)
    with SqliteSnapshot(str(db)) as snapshot:
        source = scan(snapshot, DOMAIN_TABLES).checksums
    report = verify(postgres_dsn, source, DOMAIN_TABLES)
    assert report.ok, report


@pytest.mark.slow
def test_a_sidecar_killed_mid_copy_is_asked_again_and_promotes(
    bare_cluster: Cluster, tmp_path: Path, postgres_dsn: str
) -> None:
    cluster = bare_cluster
    sidecar = seeded_sidecar(tmp_path, 30_000, batch_rows=1)
    sidecar.start()
    try:
        create_datastore(cluster, "shop", postgres_dsn)
        with operator_with(cluster, PromotionSettings(sidecar_url=sidecar.url)):
            wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", message="Idle")
            cluster.patch(
                "Datastore", "shop", {"metadata": {"annotations": {"liteshift.io/promote": "now"}}}
            )
            # The sidecar's own report: the operator's status may lag it by a tick.
            wait_for_promotion(sidecar.url, rows_moving, headers=ADMIN, timeout=60)
            assert sidecar.process is not None
            sidecar.process.send_signal(signal.SIGKILL)
            sidecar.process.wait(timeout=30)
            sidecar.process = None
            sidecar.start()  # same file, same port: on SQLite, promotion state Idle
            sidecar.add_messages(5)  # written to SQLite after the restart: must arrive too
            wait_for(lambda: promotion(cluster, "shop").get("state") in ("Promoted", "RolledBack"),
                     timeout=180, message="the outcome")  # fmt: skip
            wait_for(lambda: all(events(cluster, "shop", r) for r in TRANSITIONS),
                     message="Events")  # fmt: skip
            live = cluster.get("Datastore", "shop") or {}
        done = live["status"]["promotion"]
        assert done["state"] == "Promoted", done
        assert done["attempt"] == 1  # the operator asked the restarted sidecar again
        assert 0 < done["writePauseSeconds"] < 1
        for reason in TRANSITIONS:  # every transition once: none replayed for the new run
            assert len(events(cluster, "shop", reason)) == 1, reason
        assert httpx.get(f"{sidecar.url}/admin/status", headers=ADMIN).json()["engine"] == (
            "postgres"
        )
    finally:
        sidecar.stop()
    db = tmp_path / "data" / "liteshift.db"
    assert promoted_marker(str(db)) is not None
    assert len(postgres_ids(postgres_dsn, "messages")) == 30_005
    with SqliteSnapshot(str(db)) as snapshot:
        source = scan(snapshot, DOMAIN_TABLES).checksums
    report = verify(postgres_dsn, source, DOMAIN_TABLES)
    assert report.ok, report


@pytest.mark.slow
def test_policy_manual_recommends_then_the_annotation_promotes(
    bare_cluster: Cluster,
    sidecar: SidecarProcess,
    prometheus: PrometheusServer,
    postgres_dsn: str,
) -> None:
    cluster = bare_cluster
    settings = PromotionSettings(sidecar_url=sidecar.url, evaluation_interval=1.0)
    _create_load_bound(cluster, postgres_dsn, prometheus, policy="manual", window="10s")
    with WriteLoad(sidecar.url, headers=API, threads=4) as load, operator_with(cluster, settings):
        wait_for(lambda: promotion(cluster, "shop").get("state") == "Recommended", timeout=120,
                 message="Recommended")  # fmt: skip
        recommended = condition(cluster, "shop", "PromotionRecommended")
        assert (recommended["status"], recommended["reason"]) == ("True", "CriteriaSustained")
        assert "liteshift.io/promote=now" in recommended["message"]
        metrics = condition(cluster, "shop", "MetricsAvailable")
        assert (metrics["status"], metrics["reason"]) == ("True", "QueriesAnswered")
        wait_for(lambda: events(cluster, "shop", "PromotionRecommended"), message="the Event")
        time.sleep(3)  # policy manual: a recommendation stays one
        assert promotion(cluster, "shop")["state"] == "Recommended"
        assert httpx.get(f"{sidecar.url}/admin/promotion", headers=ADMIN).json()["state"] == "Idle"
        cluster.patch(
            "Datastore", "shop", {"metadata": {"annotations": {"liteshift.io/promote": "now"}}}
        )
        wait_for(lambda: promotion(cluster, "shop").get("state") in ("Promoted", "RolledBack"),
                 timeout=120, message="the outcome")  # fmt: skip
        load.wait_for_writes(20)
    done = promotion(cluster, "shop")
    assert done["state"] == "Promoted", done
    assert done["trigger"] == "annotation"
    assert "recommendedAt" in done
    assert load.failures == []
    assert_acked_in_postgres(load, postgres_dsn)


@pytest.mark.slow
def test_postgres_stopping_mid_copy_rolls_back_with_the_reason(
    bare_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = bare_cluster
    target = start_postgres()  # its own server: this test stops it
    sidecar = seeded_sidecar(tmp_path, 30_000, batch_rows=1)
    sidecar.start()
    try:
        create_datastore(cluster, "shop", target.create_database())
        with operator_with(cluster, PromotionSettings(sidecar_url=sidecar.url)):
            wait_for(lambda: promotion(cluster, "shop").get("state") == "Idle", message="Idle")
            cluster.patch(
                "Datastore", "shop", {"metadata": {"annotations": {"liteshift.io/promote": "now"}}}
            )
            wait_for_promotion(sidecar.url, rows_moving, headers=ADMIN, timeout=60)
            target.stop()
            wait_for(lambda: promotion(cluster, "shop").get("state") in ("Promoted", "RolledBack"),
                     timeout=120, message="the outcome")  # fmt: skip
            wait_for(lambda: events(cluster, "shop", "RolledBack"), message="the Event")
            live = cluster.get("Datastore", "shop") or {}
        done = live["status"]["promotion"]
        assert done["state"] == "RolledBack", done
        promoted = condition(cluster, "shop", "Promoted")
        print(f"rolled back: {promoted['reason']}: {promoted['message']}")
        assert promoted["status"] == "False"
        assert promoted["reason"] == done["reason"] != "RollbackRequested"
        assert "SQLite is still the primary" in promoted["message"]
        assert live["status"]["engine"] == "sqlite"
        # No data lost: the sidecar still serves SQLite, every seeded row and new writes.
        admin = httpx.get(f"{sidecar.url}/admin/status", headers=ADMIN).json()
        assert admin["engine"] == "sqlite"
        sidecar.add_messages(3)
    finally:
        sidecar.stop()
        target.stop()
    db = tmp_path / "data" / "liteshift.db"
    assert promoted_marker(str(db)) is None  # never cut over: SQLite is the primary
    assert len(sqlite_rows(db)["messages"]) == 30_003
