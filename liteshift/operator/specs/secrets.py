"""Generated Secrets: the sidecar's tokens and the managed Postgres credentials.

Builders never invent secrets: the caller generates the values once (`generate_token`) and only
when the Secret does not exist yet, so a reconcile never rotates a token under a running app.
"""

from __future__ import annotations

import secrets

from liteshift.operator.model import Datastore
from liteshift.operator.specs.common import Manifest, auth_secret_name, metadata, postgres_name

POSTGRES_USER = "liteshift"
POSTGRES_DB = "liteshift"
POSTGRES_PORT = 5432


def generate_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def build_auth_secret(ds: Datastore, api_token: str, admin_token: str) -> Manifest:
    """The `<name>-auth` Secret with the bearer tokens of /v1 and /admin."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ds, auth_secret_name(ds), "auth"),
        "type": "Opaque",
        "stringData": {"api-token": api_token, "admin-token": admin_token},
    }


def postgres_dsn(ds: Datastore, password: str) -> str:
    host = f"{postgres_name(ds)}.{ds.namespace}.svc"
    return f"postgresql://{POSTGRES_USER}:{password}@{host}:{POSTGRES_PORT}/{POSTGRES_DB}"


def build_postgres_secret(ds: Datastore, password: str) -> Manifest:
    """Credentials of the managed Postgres, with the ready-made DSN the sidecar mounts."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(ds, postgres_name(ds), "postgres"),
        "type": "Opaque",
        "stringData": {
            "username": POSTGRES_USER,
            "password": password,
            "database": POSTGRES_DB,
            "dsn": postgres_dsn(ds, password),
        },
    }
