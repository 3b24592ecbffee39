"""Bearer auth over HTTP: 401 vs 403, open routes, constant-time comparison in place."""

from __future__ import annotations

import inspect
import itertools

import httpx

from liteshift.sidecar.middleware import auth
from tests.sidecar.conftest import ADMIN, ADMIN_TOKEN, API, API_TOKEN

PROTECTED_V1 = ["/v1/messages", "/v1/cursors", "/v1/nowhere"]


BAD_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer two words"},
    {"Authorization": f"Basic {API_TOKEN}"},
    {"Authorization": API_TOKEN},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": f"Bearer {API_TOKEN}x"},
]


def test_missing_malformed_or_unknown_credentials_are_401(client: httpx.Client) -> None:
    for headers, path in itertools.product(
        BAD_CREDENTIALS, [*PROTECTED_V1, "/admin/status", "/openapi.json"]
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["www-authenticate"] == 'Bearer realm="liteshift"'
        assert response.json()["error"] == "unauthorized"


def test_token_of_the_wrong_kind_is_403(client: httpx.Client) -> None:
    response = client.get("/admin/status", headers=API)
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "detail": "this route needs the admin token"}
    response = client.get("/v1/messages", headers=ADMIN)
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers


def test_right_tokens_pass_and_open_routes_need_none(client: httpx.Client) -> None:
    assert client.get("/v1/messages", headers=API).status_code == 200
    assert client.get("/v1/messages", headers={"Authorization": f"bearer {API_TOKEN}"}).is_success
    assert client.get("/admin/status", headers=ADMIN).status_code == 200
    assert client.get("/openapi.json", headers=API).status_code == 200
    assert client.get("/openapi.json", headers=ADMIN).status_code == 200
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
    assert client.get("/elsewhere").status_code == 404


def test_comparison_is_constant_time() -> None:
    source = inspect.getsource(auth.AuthMiddleware)
    assert "hmac.compare_digest" in source
    assert "==" not in source.split("presented = _bearer(scope)")[1].split("if (wanted")[0]
    assert ADMIN_TOKEN != API_TOKEN
