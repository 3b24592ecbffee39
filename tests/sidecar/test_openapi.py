"""`/openapi.json` describes exactly the mounted routes, and real responses match its schemas."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pydantic
import pytest
from starlette.routing import Route

from liteshift.sidecar import schemas
from liteshift.store import models
from tests.sidecar.conftest import API, DIMENSION, Sidecar, make_sidecar, running


def _mounted(sidecar: Sidecar) -> set[tuple[str, str]]:
    pairs = set()
    for route in sidecar.app.routes:
        assert isinstance(route, Route)
        assert route.methods is not None
        pairs |= {(route.path, m) for m in route.methods if m != "HEAD"}
    return pairs


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items() for method in item}


@pytest.mark.parametrize("media", [False, True])
def test_document_lists_exactly_the_mounted_routes(
    tmp_path: Path, postgres_dsn: str, media: bool
) -> None:
    sidecar = make_sidecar(
        f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, media_url=postgres_dsn if media else None
    )
    with running(sidecar) as client:
        doc = client.get("/openapi.json", headers=API).json()
    assert _documented(doc) == _mounted(sidecar)
    assert (("/v1/attachments", "POST") in _documented(doc)) is media
    for path, item in doc["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == set(path.replace("}", "{").split("{")[1::2]), (path, method)
            if path.startswith("/v1/"):
                assert op["security"] == [{"apiToken": []}]
                assert {"401", "403"} <= set(op["responses"])
            if path.startswith("/admin/"):
                assert op["security"] == [{"adminToken": []}]
            if "requestBody" in op:
                assert {"400", "413", "422"} <= set(op["responses"]), (path, method)


_PAIRS = [
    (schemas.MessageOut, models.Message),
    (schemas.ProposalOut, models.Proposal),
    (schemas.EventOut, models.Event),
    (schemas.AgentMessageOut, models.AgentMessage),
    (schemas.EmbeddingOut, models.Embedding),
    (schemas.NeighborOut, models.Neighbor),
    (schemas.CursorOut, models.EtlCursor),
    (schemas.AttachmentOut, models.Attachment),
    (schemas.ExtractionOut, models.Extraction),
    (schemas.MessageCreate, models.MessageIn),
    (schemas.ProposalCreate, models.ProposalIn),
    (schemas.EventCreate, models.EventIn),
    (schemas.AgentMessageCreate, models.AgentMessageIn),
    (schemas.EmbeddingCreate, models.EmbeddingIn),
    (schemas.AttachmentCreate, models.AttachmentIn),
    (schemas.ExtractionCreate, models.ExtractionIn),
]


@pytest.mark.parametrize(("api", "domain"), _PAIRS, ids=[p[0].__name__ for p in _PAIRS])
def test_api_models_mirror_the_store_models(
    api: type[pydantic.BaseModel], domain: type[Any]
) -> None:
    assert set(api.model_fields) == {f.name for f in dataclasses.fields(domain)}


def _check(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    op = doc["paths"][path][method]
    spec = op["responses"][str(response.status_code)]
    schema = spec["content"]["application/json"]["schema"]
    jsonschema.validate(response.json(), {**schema, "components": doc["components"]})


def test_real_responses_match_the_documented_schemas(client: httpx.Client) -> None:
    doc = client.get("/openapi.json", headers=API).json()
    created = client.post(
        "/v1/messages", headers=API, json={"conversation_id": "c", "role": "r", "content": "x"}
    )
    _check(doc, "/v1/messages", "post", created)
    _check(
        doc,
        "/v1/messages/{id}",
        "get",
        client.get(f"/v1/messages/{created.json()['id']}", headers=API),
    )
    _check(doc, "/v1/messages", "get", client.get("/v1/messages", headers=API))
    proposal = client.post("/v1/proposals", headers=API, json={"kind": "k", "payload": {}})
    _check(doc, "/v1/proposals", "post", proposal)
    decided = client.post(
        f"/v1/proposals/{proposal.json()['id']}/decision", headers=API, json={"status": "rejected"}
    )
    _check(doc, "/v1/proposals/{id}/decision", "post", decided)
    again = client.post(
        f"/v1/proposals/{proposal.json()['id']}/decision", headers=API, json={"status": "rejected"}
    )
    _check(doc, "/v1/proposals/{id}/decision", "post", again)
    _check(
        doc,
        "/v1/events",
        "post",
        client.post("/v1/events", headers=API, json={"type": "t", "payload": {}}),
    )
    _check(
        doc,
        "/v1/agent-messages",
        "post",
        client.post(
            "/v1/agent-messages",
            headers=API,
            json={"conversation_id": "c", "agent": "a", "content": "x"},
        ),
    )
    _check(
        doc,
        "/v1/embeddings",
        "post",
        client.post(
            "/v1/embeddings",
            headers=API,
            json={"owner_kind": "m", "owner_id": "1", "model": "t", "vector": [0.5] * DIMENSION},
        ),
    )
    _check(
        doc,
        "/v1/embeddings/search",
        "post",
        client.post("/v1/embeddings/search", headers=API, json={"vector": [0.5] * DIMENSION}),
    )
    _check(
        doc,
        "/v1/cursors/{name}",
        "put",
        client.put("/v1/cursors/a", headers=API, json={"expected": None, "position": "1"}),
    )
    _check(doc, "/v1/cursors", "get", client.get("/v1/cursors", headers=API))
    _check(doc, "/v1/messages", "post", client.post("/v1/messages", headers=API, json={}))
    _check(doc, "/v1/messages", "post", client.post("/v1/messages", headers=API, content=b"{"))
    _check(doc, "/healthz", "get", client.get("/healthz"))
    _check(doc, "/readyz", "get", client.get("/readyz"))
    _check(
        doc,
        "/admin/status",
        "get",
        client.get(
            "/admin/status", headers={"Authorization": "Bearer admin-token-for-tests-9876543210"}
        ),
    )
