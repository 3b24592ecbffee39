"""`/admin/promotion` on a real sidecar: real SQLite file, real Postgres, real HTTP load.

The headline test promotes a sidecar while threads of HTTP clients keep writing, and checks
the contract: no client request fails, every acknowledged write is readable through the API
and present in Postgres, the write pause is under a second, the engine switched in-process.
"""

from __future__ import annotations

import functools
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from liteshift.local.postgres import start_postgres
from liteshift.promotion.loose import scan
from liteshift.promotion.online import (
    FinishReport,
    OnlineProgress,
    OnlinePromotion,
    promoted_marker,
)
from liteshift.promotion.verify import verify
from liteshift.sidecar import Settings
from liteshift.sidecar.promotion import PromotedFileRefused, Promoter, serving_settings
from liteshift.sidecar.settings import SettingsError
from liteshift.store import changelog
from liteshift.store.transfer import DOMAIN_TABLES, SqliteSnapshot
from liteshift.store.urls import redact
from tests.operator.sidecar_process import ADMIN_TOKEN as PROCESS_ADMIN_TOKEN
from tests.operator.sidecar_process import SidecarProcess
from tests.promotion.load import (
    TERMINAL,
    WriteLoad,
    postgres_ids,
    rows_moving,
    seed,
    wait_for_promotion,
)
from tests.sidecar.conftest import ADMIN, API, Sidecar, make_sidecar, running

# Every admin call of these tests: the in-process sidecar's tokens.
wait_for = functools.partial(wait_for_promotion, headers=ADMIN)


def sqlite_triggers(path: Path) -> list[str]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type='trigger'")]
    finally:
        conn.close()


def checksums_equal(sqlite_path: str, dsn: str) -> bool:
    with SqliteSnapshot(sqlite_path) as snapshot:
        source = scan(snapshot, DOMAIN_TABLES).checksums
    return verify(dsn, source, DOMAIN_TABLES).ok


def list_all(http: httpx.Client, path: str) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = http.get(path, params=params, headers=API)
        assert page.status_code == 200, page.text
        body = page.json()
        ids.update(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def sqlite_sidecar(tmp_path: Path) -> tuple[Sidecar, Path]:
    path = tmp_path / "primary.db"
    return make_sidecar(f"sqlite:///{path}", tmp_path), path


def slowed(delay: float) -> Callable[..., OnlinePromotion]:
    """OnlinePromotion whose copy reports sleep `delay` each: a copy long enough to act on."""

    def factory(
        path: str, dsn: str, *, progress: Callable[[OnlineProgress], None], **kw: Any
    ) -> OnlinePromotion:
        def slow(step: OnlineProgress) -> None:
            progress(step)
            if step.phase == "copy":
                time.sleep(delay)

        return OnlinePromotion(path, dsn, progress=slow, **kw)

    return factory


def use_promoter(sidecar: Sidecar, **options: Any) -> Promoter:
    context = sidecar.app.state.sidecar
    promoter = context.promoter = Promoter(context, **options)
    return promoter


def slow_copy_sidecar(tmp_path: Path) -> tuple[Sidecar, Path]:
    """A SQLite sidecar with 3000 rows whose copy sleeps 50 ms a batch of 100 rows: a copy
    of over a second, long enough to act on mid-copy."""
    sidecar, path = sqlite_sidecar(tmp_path)
    seed(path, 3000, pad_to=64)
    use_promoter(sidecar, factory=slowed(0.05), promotion_options={"batch_rows": 100})
    return sidecar, path


def promote_until_copying(http: httpx.Client, target: str) -> None:
    """Start a promotion to `target` and wait until its copy has moved rows."""
    started = http.post("/admin/promotion", json={"target_url": target}, headers=ADMIN)
    assert started.status_code == 202
    wait_for(http, rows_moving)


# --- the headline: promotion under a concurrent write load -------------------------------


def test_promotion_under_write_load_loses_nothing(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar, path = sqlite_sidecar(tmp_path)
    seed(path, 5000, pad_to=64)
    with running(sidecar) as http:
        assert http.get("/admin/promotion", headers=ADMIN).json()["state"] == "Idle"
        url = str(http.base_url).rstrip("/")
        with WriteLoad(url, headers=API, read_back=True) as load:
            load.wait_for_writes(200)
            started = http.post(
                "/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN
            )
            assert started.status_code == 202, started.text
            assert started.json()["state"] in ("ReadinessChecks", "Copying")
            assert started.json()["target"] == redact(postgres_dsn)
            seen: set[str] = set()

            def finished(doc: dict[str, Any]) -> bool:
                seen.add(doc["state"])
                return doc["state"] in TERMINAL

            doc = wait_for(http, finished)
            load.wait_for_writes(200)  # writes keep landing, now on Postgres
        assert doc["state"] == "Promoted", doc
        assert not load.failures, load.failures[:5]
        assert load.reads > 10
        assert doc["error"] is None
        assert doc["write_pause_ms"] is not None and 0 < doc["write_pause_ms"] < 1000
        assert doc["started_at"] and doc["finished_at"]
        assert doc["rows_copied"]["messages"] >= 5000
        assert all(t["ok"] for t in doc["verification"]["tables"].values())
        assert "Promoted" in seen

        status = http.get("/admin/status", headers=ADMIN).json()
        assert status["engine"] == "postgres"
        metrics = http.get("/metrics").text
        assert 'liteshift_promotion_state{datastore="ds-test",namespace="ns-test"} 8.0' in metrics
        assert re.search(r'liteshift_engine_info\{[^}]*engine="postgres"[^}]*\} 1\.0', metrics)
        assert http.get("/readyz").status_code == 200

        # Every acknowledged write is readable through the API and present in Postgres.
        for table, route in (("messages", "/v1/messages"), ("events", "/v1/events")):
            acked = set(load.acked[table])
            assert acked <= list_all(http, route), table
            assert acked <= postgres_ids(postgres_dsn, table), table
        sample = load.acked["messages"][-1]
        assert http.get(f"/v1/messages/{sample}", headers=API).status_code == 200

        again = http.post("/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN)
        assert again.status_code == 200 and again.json()["state"] == "Promoted"
        refused = http.post("/admin/promotion/abort", headers=ADMIN)
        assert refused.status_code == 409 and refused.json()["error"] == "already_promoted"
    marker = promoted_marker(str(path))
    assert marker is not None and marker.target == redact(postgres_dsn)


# --- abort, refusals, failures ------------------------------------------------------------


def test_abort_mid_copy_rolls_back_to_sqlite(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar, path = slow_copy_sidecar(tmp_path)
    with running(sidecar) as http:
        promote_until_copying(http, postgres_dsn)
        joined = http.post("/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN)
        assert joined.status_code == 202 and joined.json()["state"] == "Copying"
        other = http.post(
            "/admin/promotion", json={"target_url": postgres_dsn + "_other"}, headers=ADMIN
        )
        assert other.status_code == 409 and other.json()["error"] == "promotion_in_progress"

        aborted = http.post("/admin/promotion/abort", headers=ADMIN)
        assert aborted.status_code == 200, aborted.text
        doc = aborted.json()
        assert doc["state"] == "RolledBack"
        assert doc["error"]["error"] == "aborted"
        assert doc["finished_at"] is not None

        # SQLite is still the primary and takes writes; the capture is gone, Postgres empty.
        assert http.get("/admin/status", headers=ADMIN).json()["engine"] == "sqlite"
        created = http.post(
            "/v1/messages",
            json={"conversation_id": "c", "role": "u", "content": "after"},
            headers=API,
        )
        assert created.status_code == 201
        assert http.get(f"/v1/messages/{created.json()['id']}", headers=API).status_code == 200
        assert (
            'liteshift_promotion_state{datastore="ds-test",namespace="ns-test"} 9.0'
            in http.get("/metrics").text
        )
        assert not any("liteshift" in t for t in sqlite_triggers(path))
        assert postgres_ids(postgres_dsn, "messages") == set()
        again = http.post("/admin/promotion/abort", headers=ADMIN)
        assert again.status_code == 200 and again.json()["state"] == "RolledBack"
        assert promoted_marker(str(path)) is None

        # A rolled-back promotion can simply be started again (same promoter, slowed copy).
        restarted = http.post("/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN)
        assert restarted.status_code == 202
        doc = wait_for(http, lambda d: d["state"] in TERMINAL)
        assert doc["state"] == "Promoted", doc
        assert created.json()["id"] in postgres_ids(postgres_dsn, "messages")
    assert checksums_equal(str(path), postgres_dsn)


def test_shutting_down_mid_copy_rolls_back(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar, path = slow_copy_sidecar(tmp_path)
    with running(sidecar) as http:
        promote_until_copying(http, postgres_dsn)
    # The lifespan stopped the run before closing the store: nothing is left half done.
    assert sidecar.app.state.sidecar.promoter.document()["state"] == "RolledBack"
    assert not any("liteshift" in t for t in sqlite_triggers(path))
    assert postgres_ids(postgres_dsn, "messages") == set()
    assert promoted_marker(str(path)) is None


def test_abort_after_a_crash_removes_the_leftover_capture(tmp_path: Path) -> None:
    path = tmp_path / "primary.db"
    seed(path, 10, pad_to=64)
    changelog.install(str(path))  # what a sidecar killed mid-promotion leaves in its file
    assert any("liteshift" in t for t in sqlite_triggers(path))
    sidecar = make_sidecar(f"sqlite:///{path}", tmp_path)
    with running(sidecar) as http:
        assert http.get("/admin/promotion", headers=ADMIN).json()["state"] == "Idle"
        aborted = http.post("/admin/promotion/abort", headers=ADMIN)
        assert aborted.status_code == 200
        assert aborted.json()["state"] == "RolledBack"
        assert aborted.json()["error"]["error"] == "aborted"
        assert not any("liteshift" in t for t in sqlite_triggers(path))
        created = http.post("/v1/events", json={"type": "after", "payload": {}}, headers=API)
        assert created.status_code == 201
        again = http.post("/admin/promotion/abort", headers=ADMIN)
        assert again.status_code == 200 and again.json()["state"] == "RolledBack"


def test_postgres_stopping_mid_copy_rolls_back_under_load(tmp_path: Path) -> None:
    server = start_postgres()  # its own server: this test stops it
    try:
        dsn = server.create_database()
        sidecar, path = slow_copy_sidecar(tmp_path)
        with (
            running(sidecar) as http,
            WriteLoad(str(http.base_url).rstrip("/"), headers=API, read_back=True) as load,
        ):
            promote_until_copying(http, dsn)
            server.pause()
            doc = wait_for(http, lambda d: d["state"] in TERMINAL, timeout=60)
            load.wait_for_writes(50)  # SQLite keeps taking writes
            assert doc["state"] == "RolledBack", doc
            assert doc["error"]["error"] == "store_unavailable", doc
            assert http.get("/admin/status", headers=ADMIN).json()["engine"] == "sqlite"
        assert not load.failures, load.failures[:5]
        assert not any("liteshift" in t for t in sqlite_triggers(path))
        assert promoted_marker(str(path)) is None
    finally:
        server.stop()


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    sidecar, _ = sqlite_sidecar(tmp_path)
    with running(sidecar) as http:
        malformed = (
            "postgresql://u:secret@[::1/x",  # libpq quotes these back, password included
            "postgresql://u:sec ret@db/x",
            "postgresql://u:secret@db/x?bogus=1",
        )
        for target in ("mysql://db/x", "sqlite:///tmp/other.db", "", "not a url", *malformed):
            r = http.post("/admin/promotion", json={"target_url": target}, headers=ADMIN)
            assert r.status_code == 400, (target, r.text)
            assert r.json()["error"] == "bad_target"
            assert "secret" not in r.text and "sec ret" not in r.text, r.text
        r = http.post("/admin/promotion", json={}, headers=ADMIN)
        assert r.status_code == 422
        r = http.post("/admin/promotion", json={"target_url": "postgresql://x/y"}, headers=API)
        assert r.status_code == 403
        assert http.get("/admin/promotion", headers=ADMIN).json()["state"] == "Idle"


def test_unreachable_target_rolls_back_with_the_reason(tmp_path: Path) -> None:
    sidecar, _ = sqlite_sidecar(tmp_path)
    target = "postgresql://liteshift:secret@127.0.0.1:1/nowhere?connect_timeout=2"
    with running(sidecar) as http:
        r = http.post("/admin/promotion", json={"target_url": target}, headers=ADMIN)
        assert r.status_code == 202
        assert "secret" not in r.text
        doc = wait_for(http, lambda d: d["state"] in TERMINAL, timeout=60)
        assert doc["state"] == "RolledBack"
        assert doc["error"]["error"] in ("readiness_failed", "store_unavailable"), doc
        assert "secret" not in str(doc)
        created = http.post("/v1/events", json={"type": "still", "payload": {}}, headers=API)
        assert created.status_code == 201
        assert http.get("/admin/status", headers=ADMIN).json()["engine"] == "sqlite"


def test_a_sidecar_on_postgres_is_already_promoted(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar = make_sidecar(postgres_dsn, tmp_path)
    with running(sidecar) as http:
        r = http.post("/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN)
        assert r.status_code == 200 and r.json()["state"] == "Promoted"
        assert http.get("/admin/promotion", headers=ADMIN).json()["state"] == "Promoted"


class CaptureLostAtCutover(OnlinePromotion):
    """The real library, with its change capture removed inside the write pause: finish()
    must refuse (writes might have escaped the capture) and nothing may be marked."""

    def finish(self) -> FinishReport:
        changelog.remove(self.sqlite_path, self.tables, keep_meta=True)
        return super().finish()


def test_a_failed_cutover_reopens_the_gate_onto_sqlite(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar, path = sqlite_sidecar(tmp_path)
    seed(path, 1000, pad_to=64)
    use_promoter(sidecar, factory=CaptureLostAtCutover)
    with running(sidecar) as http:
        url = str(http.base_url).rstrip("/")
        with WriteLoad(url, headers=API, read_back=True) as load:
            load.wait_for_writes(100)
            started = http.post(
                "/admin/promotion", json={"target_url": postgres_dsn}, headers=ADMIN
            )
            assert started.status_code == 202
            doc = wait_for(http, lambda d: d["state"] in TERMINAL)
            load.wait_for_writes(100)
        assert doc["state"] == "RolledBack", doc
        assert doc["error"]["error"] == "verification_failed", doc
        assert doc["write_pause_ms"] is not None and doc["write_pause_ms"] < 1000
        assert not load.failures, load.failures[:5]
        assert http.get("/admin/status", headers=ADMIN).json()["engine"] == "sqlite"
        for table, route in (("messages", "/v1/messages"), ("events", "/v1/events")):
            assert set(load.acked[table]) <= list_all(http, route), table
        assert postgres_ids(postgres_dsn, "messages") == set()
    assert promoted_marker(str(path)) is None


def test_promotion_settings_from_the_environment(tmp_path: Path) -> None:
    target = "postgresql://app:secret@db:5432/app"
    assert Settings.from_env({}).promotion_target_url is None
    assert (
        Settings.from_env({"LITESHIFT_PROMOTION_TARGET_URL": target}).promotion_target_url == target
    )
    secret = tmp_path / "target"
    secret.write_text(target + "\n")
    from_file = Settings.from_env({"LITESHIFT_PROMOTION_TARGET_URL_FILE": str(secret)})
    assert from_file.promotion_target_url == target
    with pytest.raises(SettingsError, match="LITESHIFT_PROMOTION_TARGET_URL"):
        Settings.from_env({"LITESHIFT_PROMOTION_TARGET_URL": "sqlite:///x.db"})
    assert Settings.from_env({"LITESHIFT_PROMOTION_BATCH_ROWS": "50"}).promotion_batch_rows == 50
    with pytest.raises(SettingsError, match="LITESHIFT_PROMOTION_BATCH_ROWS"):
        Settings.from_env({"LITESHIFT_PROMOTION_BATCH_ROWS": "0"})


# --- restart on a promoted file -----------------------------------------------------------


def promote_quietly(tmp_path: Path, dsn: str) -> Path:
    sidecar, path = sqlite_sidecar(tmp_path)
    seed(path, 50, pad_to=64)
    with running(sidecar) as http:
        assert (
            http.post("/admin/promotion", json={"target_url": dsn}, headers=ADMIN).status_code
            == 202
        )
        assert wait_for(http, lambda d: d["state"] in TERMINAL)["state"] == "Promoted"
    return path


def test_restart_on_a_promoted_file(tmp_path: Path, postgres_dsn: str) -> None:
    path = promote_quietly(tmp_path, postgres_dsn)
    settings = Settings(db_url=f"sqlite:///{path}")
    with pytest.raises(PromotedFileRefused, match="LITESHIFT_PROMOTION_TARGET_URL"):
        serving_settings(settings)
    served = serving_settings(replace(settings, promotion_target_url=postgres_dsn))
    assert served.db_url == postgres_dsn
    assert served.resolved_token_dir() == path.parent  # generated tokens are found again
    unmarked = Settings(
        db_url=f"sqlite:///{tmp_path / 'other.db'}", promotion_target_url=postgres_dsn
    )
    assert serving_settings(unmarked) == unmarked

    (tmp_path / "proc").mkdir()
    process = SidecarProcess(tmp_path / "proc", "ds-restart", "ns")
    process.env["LITESHIFT_DB_URL"] = f"sqlite:///{path}"
    refused = subprocess.run(
        [str(Path(sys.executable).parent / "liteshift"), "serve"],
        env=process.env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "promoted" in lines[0], (
        refused.stderr
    )
    assert "LITESHIFT_PROMOTION_TARGET_URL" in lines[0]

    process.env["LITESHIFT_PROMOTION_TARGET_URL"] = postgres_dsn
    process.start()
    try:
        admin = {"Authorization": f"Bearer {PROCESS_ADMIN_TOKEN}"}
        status = httpx.get(f"{process.url}/admin/status", headers=admin).json()
        assert status["engine"] == "postgres"
        doc = httpx.get(f"{process.url}/admin/promotion", headers=admin).json()
        assert doc["state"] == "Promoted"
        process.add_messages(3)  # writes go to Postgres
    finally:
        process.stop()
    assert len(postgres_ids(postgres_dsn, "messages")) == 53


# --- crash: SIGKILL during Copying, restart, promote again --------------------------------


@pytest.mark.slow  # 7-21 s on the shared 2-core box
def test_sigkill_during_copying_then_promote_again(tmp_path: Path, postgres_dsn: str) -> None:
    process = SidecarProcess(tmp_path, "ds-crash", "ns")
    process.env["LITESHIFT_PROMOTION_BATCH_ROWS"] = "50"
    db_path = tmp_path / "data" / "liteshift.db"
    seed(db_path, 20000, pad_to=64)
    admin = {"Authorization": f"Bearer {PROCESS_ADMIN_TOKEN}"}
    process.start()
    try:
        with httpx.Client(base_url=process.url, timeout=30, headers=admin) as http:
            assert (
                http.post("/admin/promotion", json={"target_url": postgres_dsn}).status_code == 202
            )
            wait_for(http, rows_moving, timeout=60, pause=0.01, headers=admin)
        assert process.process is not None
        process.process.send_signal(signal.SIGKILL)
        process.process.wait(timeout=30)
        process.process = None

        process.start()
        with httpx.Client(base_url=process.url, timeout=30, headers=admin) as http:
            assert http.get("/admin/promotion").json()["state"] == "Idle"
            assert http.get("/admin/status").json()["engine"] == "sqlite"
            process.add_messages(5)  # the restarted sidecar keeps writing SQLite
            assert (
                http.post("/admin/promotion", json={"target_url": postgres_dsn}).status_code == 202
            )
            doc = wait_for(http, lambda d: d["state"] in TERMINAL, timeout=300, headers=admin)
            assert doc["state"] == "Promoted", doc
            assert http.get("/admin/status").json()["engine"] == "postgres"
    finally:
        process.stop()
    assert promoted_marker(str(db_path)) is not None
    assert checksums_equal(str(db_path), postgres_dsn)
    assert len(postgres_ids(postgres_dsn, "messages")) == 20005
