"""Generated Secrets: values come in from the caller, never from the builder."""

from __future__ import annotations

from liteshift.operator.model import Datastore
from liteshift.operator.specs.secrets import (
    build_auth_secret,
    build_postgres_secret,
    generate_token,
)


def ds() -> Datastore:
    return Datastore.parse({"metadata": {"name": "shop", "namespace": "apps"}, "spec": {}})


def test_auth_secret() -> None:
    secret = build_auth_secret(ds(), "api-1", "admin-1")
    assert secret["metadata"]["name"] == "shop-auth"
    assert secret["stringData"] == {"api-token": "api-1", "admin-token": "admin-1"}
    assert build_auth_secret(ds(), "api-1", "admin-1") == secret


def test_postgres_secret_carries_a_ready_dsn() -> None:
    secret = build_postgres_secret(ds(), "pw")
    assert secret["stringData"] == {
        "username": "liteshift",
        "password": "pw",
        "database": "liteshift",
        "dsn": "postgresql://liteshift:pw@shop-postgres.apps.svc:5432/liteshift",
    }


def test_generated_tokens_are_long_random_and_url_safe() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert len(token) >= 43
        assert token.replace("-", "").replace("_", "").isalnum()
