"""Every /v1 route over HTTP on both engines: success paths and each documented error status."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sidecar.conftest import ADMIN, API, DIMENSION, make_sidecar, running


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _error(response: Any, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code, body
    assert set(body) == {"error", "detail"}
    return body


def test_messages_create_get_list_and_errors(client: httpx.Client) -> None:
    made = [
        _ok(
            client.post(
                "/v1/messages",
                headers=API,
                json={
                    "conversation_id": conv,
                    "role": "user",
                    "content": f"m{i}",
                    "metadata": {"n": i},
                    "created_at": f"2026-01-01T00:00:0{i}Z",
                },
            ),
            201,
        )
        for i, conv in enumerate(["a", "b", "a", "a"])
    ]
    first = made[0]
    assert first["metadata"] == {"n": 0} and first["sender"] is None
    assert _ok(client.get(f"/v1/messages/{first['id']}", headers=API)) == first
    page = _ok(client.get("/v1/messages", headers=API, params={"conversation_id": "a", "limit": 2}))
    assert [m["content"] for m in page["items"]] == ["m0", "m2"]
    rest = _ok(
        client.get(
            "/v1/messages",
            headers=API,
            params={"conversation_id": "a", "limit": 2, "cursor": page["next_cursor"]},
        )
    )
    assert [m["content"] for m in rest["items"]] == ["m3"] and rest["next_cursor"] is None
    ranged = _ok(
        client.get(
            "/v1/messages",
            headers=API,
            params={"since": "2026-01-01T00:00:01Z", "until": "2026-01-01T00:00:03Z"},
        )
    )
    assert [m["content"] for m in ranged["items"]] == ["m1", "m2"]

    _error(client.get(f"/v1/messages/{uuid.uuid4()}", headers=API), 404, "not_found")
    _error(
        client.post(
            "/v1/messages",
            headers=API,
            json={"id": first["id"], "conversation_id": "a", "role": "user", "content": "dup"},
        ),
        409,
        "conflict",
    )
    _error(client.post("/v1/messages", headers=API, content=b"{not json"), 400, "bad_json")
    _error(client.post("/v1/messages", headers=API, content=b""), 400, "bad_json")
    body = _error(
        client.post(
            "/v1/messages", headers=API, json={"conversation_id": 5, "role": "user", "content": "x"}
        ),
        422,
        "validation_error",
    )
    assert body["detail"][0]["loc"] == ["body", "conversation_id"]
    _error(
        client.post(
            "/v1/messages",
            headers=API,
            json={"conversation_id": "a", "role": "user", "content": "x", "extra": 1},
        ),
        422,
        "validation_error",
    )
    _error(client.post("/v1/messages", headers=API, json=[1, 2]), 422, "validation_error")
    _error(client.get("/v1/messages", headers=API, params={"limit": 0}), 422, "validation_error")
    _error(
        client.get("/v1/messages", headers=API, params={"since": "yesterday"}),
        422,
        "validation_error",
    )
    _error(client.get("/v1/messages", headers=API, params={"bogus": "1"}), 422, "validation_error")
    _error(
        client.get("/v1/messages", headers=API, params={"cursor": "garbage!"}),
        422,
        "validation_error",
    )
    _error(client.get("/v1/messages/not-a-uuid", headers=API), 422, "validation_error")
    _error(client.delete(f"/v1/messages/{first['id']}", headers=API), 405, "method_not_allowed")
    _error(client.get("/v1/nothing-here", headers=API), 404, "not_found")


def test_proposals_transitions(client: httpx.Client) -> None:
    proposal = _ok(
        client.post(
            "/v1/proposals",
            headers=API,
            json={"kind": "merge", "payload": {"x": [1, 2]}, "conversation_id": "c"},
        ),
        201,
    )
    assert proposal["status"] == "pending" and proposal["decided_at"] is None
    other = _ok(
        client.post("/v1/proposals", headers=API, json={"kind": "split", "payload": {}}), 201
    )
    decided = _ok(
        client.post(
            f"/v1/proposals/{proposal['id']}/decision",
            headers=API,
            json={"status": "accepted", "reason": "looks right"},
        )
    )
    assert decided["status"] == "accepted" and decided["reason"] == "looks right"
    assert decided["decided_at"] is not None
    body = _error(
        client.post(
            f"/v1/proposals/{proposal['id']}/decision", headers=API, json={"status": "rejected"}
        ),
        409,
        "invalid_transition",
    )
    assert "accepted" in body["detail"]
    _error(
        client.post(
            f"/v1/proposals/{uuid.uuid4()}/decision", headers=API, json={"status": "rejected"}
        ),
        404,
        "not_found",
    )
    _error(
        client.post(
            f"/v1/proposals/{other['id']}/decision", headers=API, json={"status": "pending"}
        ),
        422,
        "validation_error",
    )
    assert _ok(client.get(f"/v1/proposals/{other['id']}", headers=API))["status"] == "pending"
    pending = _ok(client.get("/v1/proposals", headers=API, params={"status": "pending"}))
    assert [p["id"] for p in pending["items"]] == [other["id"]]
    by_kind = _ok(client.get("/v1/proposals", headers=API, params={"kind": "merge"}))
    assert [p["id"] for p in by_kind["items"]] == [proposal["id"]]
    by_conv = _ok(client.get("/v1/proposals", headers=API, params={"conversation_id": "c"}))
    assert len(by_conv["items"]) == 1
    _error(
        client.get("/v1/proposals", headers=API, params={"status": "maybe"}),
        422,
        "validation_error",
    )
    _error(client.get(f"/v1/proposals/{uuid.uuid4()}", headers=API), 404, "not_found")
    _error(
        client.post("/v1/proposals", headers=API, json={"kind": "k", "payload": "str"}),
        422,
        "validation_error",
    )


def test_events_are_append_only(client: httpx.Client) -> None:
    event = _ok(
        client.post(
            "/v1/events",
            headers=API,
            json={"type": "user.joined", "payload": {"u": 1}, "subject_id": "s1"},
        ),
        201,
    )
    _ok(client.post("/v1/events", headers=API, json={"type": "user.left", "payload": {}}), 201)
    assert _ok(client.get(f"/v1/events/{event['id']}", headers=API)) == event
    only = _ok(client.get("/v1/events", headers=API, params={"type": "user.joined"}))
    assert [e["id"] for e in only["items"]] == [event["id"]]
    subject = _ok(client.get("/v1/events", headers=API, params={"subject_id": "s1"}))
    assert len(subject["items"]) == 1
    for method in ("put", "patch", "delete"):
        _error(
            client.request(method, f"/v1/events/{event['id']}", headers=API),
            405,
            "method_not_allowed",
        )
    _error(
        client.post(
            "/v1/events", headers=API, json={"id": event["id"], "type": "x", "payload": {}}
        ),
        409,
        "conflict",
    )
    _error(client.get(f"/v1/events/{uuid.uuid4()}", headers=API), 404, "not_found")


def test_agent_messages(client: httpx.Client) -> None:
    made = _ok(
        client.post(
            "/v1/agent-messages",
            headers=API,
            json={
                "conversation_id": "c",
                "agent": "planner",
                "content": "plan",
                "recipient": "coder",
            },
        ),
        201,
    )
    _ok(
        client.post(
            "/v1/agent-messages",
            headers=API,
            json={"conversation_id": "c", "agent": "coder", "content": "code"},
        ),
        201,
    )
    assert _ok(client.get(f"/v1/agent-messages/{made['id']}", headers=API)) == made
    by_agent = _ok(client.get("/v1/agent-messages", headers=API, params={"agent": "planner"}))
    assert [m["id"] for m in by_agent["items"]] == [made["id"]]
    assert (
        len(
            _ok(client.get("/v1/agent-messages", headers=API, params={"conversation_id": "c"}))[
                "items"
            ]
        )
        == 2
    )
    _error(client.get(f"/v1/agent-messages/{uuid.uuid4()}", headers=API), 404, "not_found")
    _error(
        client.post("/v1/agent-messages", headers=API, json={"agent": "a"}), 422, "validation_error"
    )


def test_embeddings_and_search(client: httpx.Client) -> None:
    ids = []
    for i in range(5):
        made = _ok(
            client.post(
                "/v1/embeddings",
                headers=API,
                json={
                    "owner_kind": "message",
                    "owner_id": f"m{i}",
                    "model": "tiny",
                    "vector": [float(i)] * DIMENSION,
                },
            ),
            201,
        )
        assert made["dimension"] == DIMENSION
        ids.append(made["id"])
    hits = _ok(
        client.post(
            "/v1/embeddings/search", headers=API, json={"vector": [3.1] * DIMENSION, "k": 2}
        )
    )["items"]
    assert [h["embedding"]["owner_id"] for h in hits] == ["m3", "m4"]
    assert hits[0]["distance"] == pytest.approx(0.2, abs=1e-3)
    got = _ok(client.get(f"/v1/embeddings/{ids[0]}", headers=API))
    assert got["vector"] == [0.0] * DIMENSION
    listed = _ok(client.get("/v1/embeddings", headers=API, params={"owner_id": "m1"}))
    assert [e["id"] for e in listed["items"]] == [ids[1]]
    assert (
        len(
            _ok(
                client.get(
                    "/v1/embeddings", headers=API, params={"model": "tiny", "owner_kind": "message"}
                )
            )["items"]
        )
        == 5
    )
    response = client.delete(f"/v1/embeddings/{ids[3]}", headers=API)
    assert response.status_code == 204 and response.content == b""
    _error(client.delete(f"/v1/embeddings/{ids[3]}", headers=API), 404, "not_found")
    hits = _ok(
        client.post(
            "/v1/embeddings/search", headers=API, json={"vector": [3.1] * DIMENSION, "k": 1}
        )
    )["items"]
    assert hits[0]["embedding"]["owner_id"] == "m4"
    _error(
        client.post(
            "/v1/embeddings",
            headers=API,
            json={"owner_kind": "m", "owner_id": "x", "model": "t", "vector": [1.0]},
        ),
        422,
        "validation_error",
    )
    _error(
        client.post("/v1/embeddings/search", headers=API, json={"vector": ["a"]}),
        422,
        "validation_error",
    )
    _error(
        client.post(
            "/v1/embeddings/search", headers=API, json={"vector": [1.0] * DIMENSION, "k": 0}
        ),
        422,
        "validation_error",
    )
    _error(client.get(f"/v1/embeddings/{uuid.uuid4()}", headers=API), 404, "not_found")


def test_cursors_compare_and_set(client: httpx.Client) -> None:
    created = _ok(
        client.put("/v1/cursors/ingest", headers=API, json={"expected": None, "position": "10"})
    )
    assert created["position"] == "10"
    moved = _ok(
        client.put("/v1/cursors/ingest", headers=API, json={"expected": "10", "position": "20"})
    )
    assert moved["position"] == "20"
    body = _error(
        client.put("/v1/cursors/ingest", headers=API, json={"expected": "10", "position": "30"}),
        409,
        "cursor_conflict",
    )
    assert "'20'" in body["detail"]
    _error(
        client.put("/v1/cursors/ingest", headers=API, json={"expected": None, "position": "1"}),
        409,
        "cursor_conflict",
    )
    _error(
        client.put("/v1/cursors/other", headers=API, json={"expected": "5", "position": "6"}),
        409,
        "cursor_conflict",
    )
    assert _ok(client.get("/v1/cursors/ingest", headers=API))["position"] == "20"
    _ok(client.put("/v1/cursors/another", headers=API, json={"expected": None, "position": "a"}))
    page = _ok(client.get("/v1/cursors", headers=API, params={"limit": 1}))
    assert [c["name"] for c in page["items"]] == ["another"]
    page = _ok(client.get("/v1/cursors", headers=API, params={"cursor": page["next_cursor"]}))
    assert [c["name"] for c in page["items"]] == ["ingest"]
    _error(client.get("/v1/cursors/missing", headers=API), 404, "not_found")
    _error(
        client.put("/v1/cursors/x", headers=API, json={"position": "1"}), 422, "validation_error"
    )


def test_media_routes_absent_when_media_disabled(client: httpx.Client) -> None:
    for path in ("/v1/attachments", "/v1/extractions", f"/v1/attachments/{uuid.uuid4()}"):
        _error(client.get(path, headers=API), 404, "not_found")


def test_media_routes_when_enabled(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar = make_sidecar(f"sqlite:///{tmp_path / 'primary.db'}", tmp_path, media_url=postgres_dsn)
    with running(sidecar) as client:
        message = _ok(
            client.post(
                "/v1/messages",
                headers=API,
                json={"conversation_id": "c", "role": "user", "content": "see picture"},
            ),
            201,
        )
        attachment = _ok(
            client.post(
                "/v1/attachments",
                headers=API,
                json={
                    "message_id": message["id"],
                    "media_type": "image/png",
                    "uri": "s3://b/k.png",
                    "size_bytes": 123,
                },
            ),
            201,
        )
        assert _ok(client.get(f"/v1/attachments/{attachment['id']}", headers=API)) == attachment
        listed = _ok(
            client.get("/v1/attachments", headers=API, params={"message_id": message["id"]})
        )
        assert [a["id"] for a in listed["items"]] == [attachment["id"]]
        extraction = _ok(
            client.post(
                "/v1/extractions",
                headers=API,
                json={"attachment_id": attachment["id"], "kind": "ocr", "content": "text"},
            ),
            201,
        )
        assert _ok(client.get(f"/v1/extractions/{extraction['id']}", headers=API)) == extraction
        assert (
            len(_ok(client.get("/v1/extractions", headers=API, params={"kind": "ocr"}))["items"])
            == 1
        )
        _error(
            client.post(
                "/v1/attachments",
                headers=API,
                json={
                    "message_id": str(uuid.uuid4()),
                    "media_type": "image/png",
                    "uri": "u",
                    "size_bytes": 1,
                },
            ),
            404,
            "not_found",
        )
        _error(
            client.post(
                "/v1/extractions",
                headers=API,
                json={"attachment_id": str(uuid.uuid4()), "kind": "ocr"},
            ),
            404,
            "not_found",
        )
        _error(client.get(f"/v1/attachments/{uuid.uuid4()}", headers=API), 404, "not_found")
        _error(client.get(f"/v1/extractions/{uuid.uuid4()}", headers=API), 404, "not_found")
        _error(
            client.post(
                "/v1/attachments",
                headers=API,
                json={
                    "id": attachment["id"],
                    "message_id": message["id"],
                    "media_type": "image/png",
                    "uri": "u",
                    "size_bytes": 1,
                },
            ),
            409,
            "conflict",
        )


def test_health_ready_and_admin_status(client: httpx.Client) -> None:
    assert _ok(client.get("/healthz")) == {"status": "ok"}
    assert _ok(client.get("/readyz")) == {
        "status": "ready",
        "checks": {"store": "ok", "migrations": "ok"},
    }
    status = _ok(client.get("/admin/status", headers=ADMIN))
    assert status["datastore"] == "ds-test" and status["namespace"] == "ns-test"
    assert status["engine"] in ("sqlite", "postgres")
    assert status["database_size_bytes"] > 0
    assert status["migrations"] and {m["state"] for m in status["migrations"]} == {"applied"}
    _error(client.get("/admin/nothing", headers=ADMIN), 404, "not_found")
    _error(client.post("/admin/status", headers=ADMIN), 405, "method_not_allowed")


def test_readyz_reports_pending_migrations(tmp_path: Path) -> None:
    db = tmp_path / "fresh.db"
    sidecar = make_sidecar(f"sqlite:///{db}", tmp_path)
    with running(sidecar) as client:
        _ok(client.get("/readyz"))
        import apsw

        conn = apsw.Connection(str(db))
        conn.execute("DELETE FROM schema_migrations WHERE version = 2")
        conn.close()
        body = client.get("/readyz")
        assert body.status_code == 503
        assert body.json()["status"] == "not_ready"
        assert "0002_indexes pending" in body.json()["checks"]["migrations"]
        assert _ok(client.get("/healthz")) == {"status": "ok"}
