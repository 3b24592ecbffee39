"""A write that reaches a SQLite file promoted underneath the sidecar is a 503, never a 500."""

from __future__ import annotations

from pathlib import Path

from liteshift.store import changelog
from tests.sidecar.conftest import API, make_sidecar, running


def test_a_write_to_a_promoted_file_is_503_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "sidecar.db"
    sidecar = make_sidecar(f"sqlite:///{db}", tmp_path)
    with running(sidecar) as client:
        created = client.post(
            "/v1/messages",
            headers=API,
            json={"conversation_id": "c", "role": "user", "content": "a"},
        )
        assert created.status_code == 201, created.text
        # Another process (a finish() the gate did not cover) promotes the file meanwhile.
        changelog.install(str(db))
        with changelog.write_transaction(str(db)) as conn:
            changelog.mark_promoted(conn, "postgresql://app:***@db/app")

        refused = client.post(
            "/v1/messages",
            headers=API,
            json={"conversation_id": "c", "role": "user", "content": "b"},
        )
        assert refused.status_code == 503, refused.text
        body = refused.json()
        assert body["error"] == "promoted_read_only"
        assert body["detail"] == (
            f"cannot use database sqlite file {db}: this SQLite file was promoted to Postgres "
            "and is read-only (it is the rollback point)"
        )
        decided = client.post("/v1/events", headers=API, json={"type": "t", "payload": {}})
        assert decided.status_code == 503 and decided.json()["error"] == "promoted_read_only"
        # Reads go on: the file is the rollback point, not broken.
        listed = client.get("/v1/messages", headers=API, params={"conversation_id": "c"})
        assert listed.status_code == 200
        assert [m["content"] for m in listed.json()["items"]] == ["a"]
