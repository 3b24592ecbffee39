"""`/admin/backups` over real HTTP, on SQLite and on the test harness's real Postgres."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from liteshift.backup import list_backups, verify_backup
from tests.sidecar.conftest import ADMIN, API, Sidecar, make_sidecar, running


@pytest.fixture
def backup_dir(tmp_path: Path) -> Path:
    return tmp_path / "backups"


@pytest.fixture
def backup_sidecar(db_url: str, tmp_path: Path, backup_dir: Path) -> Sidecar:
    return make_sidecar(db_url, tmp_path, backup_dir=backup_dir)


@pytest.fixture
def admin_client(backup_sidecar: Sidecar) -> Iterator[httpx.Client]:
    with running(backup_sidecar) as http:
        yield http


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code, body
    return body


def _add_messages(client: httpx.Client, count: int) -> None:
    for i in range(count):
        response = client.post(
            "/v1/messages",
            headers=API,
            json={"conversation_id": "c", "role": "user", "content": f"m{i}"},
        )
        assert response.status_code == 201, response.text


def _gauge(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("liteshift_backup_last_success_timestamp_seconds{")
    ]
    assert len(lines) == 1, lines
    return float(lines[0].rsplit(" ", 1)[1])


def test_create_returns_a_verified_manifest_and_sets_the_gauge(
    admin_client: httpx.Client, backup_dir: Path, db_url: str
) -> None:
    _add_messages(admin_client, 5)
    assert _gauge(admin_client) == 0
    before = time.time()
    response = admin_client.post("/admin/backups", headers=ADMIN, json={"compression": "zstd"})
    assert response.status_code == 201, response.text
    manifest = response.json()
    engine = "postgres" if db_url.startswith("postgresql") else "sqlite"
    assert manifest["engine"] == engine
    assert manifest["datastore"] == "ds-test"
    assert manifest["namespace"] == "ns-test"
    assert manifest["compression"] == "zstd"
    assert manifest["check_result"] == "ok"
    assert manifest["row_counts"]["messages"] == 5
    assert len(manifest["sha256"]) == 64
    assert manifest["size"] > 0
    assert before <= _gauge(admin_client) <= time.time()
    # What the API answered is what is on disk, and it verifies.
    on_disk = list_backups(backup_dir)
    assert [entry.name for entry in on_disk] == [manifest["id"]]
    assert on_disk[0].manifest is not None
    assert on_disk[0].manifest.sha256 == manifest["sha256"]
    verify_backup(backup_dir / manifest["id"])


def test_list_shows_complete_and_incomplete_backups(
    admin_client: httpx.Client, backup_dir: Path
) -> None:
    empty = admin_client.get("/admin/backups", headers=ADMIN)
    assert empty.status_code == 200, empty.text
    assert empty.json() == {"backups": []}
    made = admin_client.post("/admin/backups", headers=ADMIN, json={"full_check": True})
    assert made.status_code == 201, made.text
    assert made.json()["check"] in ("integrity_check", "pg_restore --list")
    # A directory named like a backup but without a manifest: damage, shown as such.
    (backup_dir / "ds-test-20200101T000000Z-abcdef").mkdir()
    listed = admin_client.get("/admin/backups", headers=ADMIN).json()["backups"]
    assert [(b["name"], b["complete"]) for b in listed] == [
        ("ds-test-20200101T000000Z-abcdef", False),
        (made.json()["id"], True),
    ]
    assert "missing" in listed[0]["problem"]
    assert listed[0]["manifest"] is None
    assert listed[1]["manifest"] == made.json()


def test_prune_applies_retention_on_disk(admin_client: httpx.Client, backup_dir: Path) -> None:
    ids = []
    for _ in range(4):
        response = admin_client.post("/admin/backups", headers=ADMIN, json={})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    pruned = admin_client.post("/admin/backups/prune", headers=ADMIN, json={"keep_last": 2})
    assert pruned.status_code == 200, pruned.text
    body = pruned.json()
    assert body["kept"] == 2
    assert sorted(d["name"] for d in body["deleted"]) == sorted(ids[:2])
    assert sorted(p.name for p in backup_dir.iterdir()) == sorted(ids[2:])


def test_auth_body_and_failure_errors(
    admin_client: httpx.Client, backup_sidecar: Sidecar, backup_dir: Path
) -> None:
    for method, path in (
        ("POST", "/admin/backups"),
        ("GET", "/admin/backups"),
        ("POST", "/admin/backups/prune"),
    ):
        _error(admin_client.request(method, path, json={}), 401, "unauthorized")
        _error(admin_client.request(method, path, headers=API, json={}), 403, "forbidden")
    _error(admin_client.post("/admin/backups", headers=ADMIN, content=b"{"), 400, "bad_json")
    _error(
        admin_client.post("/admin/backups", headers=ADMIN, json={"compression": "lz4"}),
        422,
        "validation_error",
    )
    _error(
        admin_client.post("/admin/backups", headers=ADMIN, json={"fast": True}),
        422,
        "validation_error",
    )
    _error(admin_client.post("/admin/backups/prune", headers=ADMIN, json={}), 422,
           "validation_error")  # fmt: skip
    _error(
        admin_client.post("/admin/backups/prune", headers=ADMIN, json={"max_age": "soon"}),
        422,
        "invalid_option",
    )
    # The backup directory cannot be created: a server-side failure, reported, not a traceback.
    backup_dir.write_text("not a directory")
    body = _error(admin_client.post("/admin/backups", headers=ADMIN, json={}), 500,
                  "backup_failed")  # fmt: skip
    assert "backup failed" in body["detail"]
    assert _gauge(admin_client) == 0


def test_openapi_documents_the_backup_routes(admin_client: httpx.Client) -> None:
    doc = admin_client.get("/openapi.json", headers=API).json()
    assert {"post", "get"} <= set(doc["paths"]["/admin/backups"])
    create = doc["paths"]["/admin/backups"]["post"]
    assert "201" in create["responses"]
    assert "409" in create["responses"]
    assert "/admin/backups/prune" in doc["paths"]
    assert "ManifestOut" in doc["components"]["schemas"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_second_backup_while_one_runs_gets_409(
    db_url: str, tmp_path: Path, backup_dir: Path
) -> None:
    # ~48 MB of filler makes the first backup take long enough (copy + integrity_check +
    # sha256) that the second request, sent once the first one's partial directory exists,
    # certainly arrives while it runs.
    sidecar = make_sidecar(db_url, tmp_path, backup_dir=backup_dir)
    path = db_url.removeprefix("sqlite://")
    connection = apsw.Connection(path)
    connection.execute("CREATE TABLE filler(b BLOB)")
    with connection:
        for _ in range(48):
            connection.execute("INSERT INTO filler VALUES (randomblob(1048576))")
    connection.close()
    with running(sidecar) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/admin/backups", headers=ADMIN, json={"full_check": True})
        deadline = time.monotonic() + 30
        while not (backup_dir.is_dir() and any(backup_dir.glob(".partial-*"))):
            assert time.monotonic() < deadline, "the first backup never started"
            time.sleep(0.002)
        body = _error(client.post("/admin/backups", headers=ADMIN, json={}), 409,
                      "backup_in_progress")  # fmt: skip
        assert "retry" in body["detail"]
        _error(client.post("/admin/backups/prune", headers=ADMIN, json={"keep_last": 1}), 409,
               "backup_in_progress")  # fmt: skip
        assert first.result(timeout=120).status_code == 201
        # Free again once the first finished.
        again = client.post("/admin/backups", headers=ADMIN, json={})
        assert again.status_code == 201, again.text
        assert again.json()["row_counts"]["filler"] == 48
