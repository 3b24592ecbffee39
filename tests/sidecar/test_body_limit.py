"""Body size limit over real HTTP: 413 with a Content-Length and for chunked uploads."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tests.sidecar.conftest import API, API_TOKEN, make_sidecar, running

LIMIT = 2048


def _sidecar_client(tmp_path: Path) -> Iterator[httpx.Client]:
    sidecar = make_sidecar(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, max_body_bytes=LIMIT)
    with running(sidecar) as client:
        yield client


def test_declared_length_over_the_limit_is_413(tmp_path: Path) -> None:
    for client in _sidecar_client(tmp_path):
        body = {"conversation_id": "c", "role": "user", "content": "x" * (LIMIT + 10)}
        response = client.post("/v1/messages", headers=API, json=body)
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"
        small = {"conversation_id": "c", "role": "user", "content": "x" * 100}
        assert client.post("/v1/messages", headers=API, json=small).status_code == 201


def test_chunked_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for client in _sidecar_client(tmp_path):

        def chunks() -> Iterator[bytes]:
            yield b'{"conversation_id": "c", "role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 512
            yield b'"}'

        response = client.post("/v1/messages", headers=API, content=chunks())
        assert response.status_code == 413
        assert response.json()["error"] == "payload_too_large"

        def small() -> Iterator[bytes]:
            yield b'{"conversation_id": "c", "role": "user",'
            yield b' "content": "fits"}'

        response = client.post("/v1/messages", headers=API, content=small())
        assert response.status_code == 201, response.text
        assert response.json()["content"] == "fits"


def test_lying_content_length_never_reaches_the_app(tmp_path: Path) -> None:
    for client in _sidecar_client(tmp_path):
        url = urlparse(str(client.base_url))
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: Bearer {API_TOKEN}\r\n".encode()
                + b"Content-Length: 99999999\r\nContent-Type: application/json\r\n\r\n{}"
            )
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply
