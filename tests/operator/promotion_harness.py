"""What the operator's promotion tests share: kopf for real against kmock with promotion
settings in its memo, Secrets pointing at the test's real Postgres, and readers for status,
conditions and Events. Seeding, the HTTP write load and sidecar polling live in
tests/promotion/load.py (the sidecar's own tests use them too)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from liteshift.operator.handlers.promotion import PROMOTION_MEMO_KEY, PromotionSettings
from tests.operator.cluster import NAMESPACE, Cluster, running_operator
from tests.operator.sidecar_process import ADMIN_TOKEN, API_TOKEN, SidecarProcess
from tests.promotion.load import postgres_ids, seed

# seed and postgres_ids are re-exported: the handler tests take every promotion helper here.
__all__ = [
    "ADMIN",
    "API",
    "annotate",
    "condition",
    "create_datastore",
    "datastore",
    "dsn_secret",
    "events",
    "operator_with",
    "postgres_ids",
    "postgres_tables",
    "promotion",
    "seed",
    "seeded_sidecar",
    "status",
    "tokens_secret",
]

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
API = {"Authorization": f"Bearer {API_TOKEN}"}


@contextlib.contextmanager
def operator_with(cluster: Cluster, settings: PromotionSettings) -> Iterator[None]:
    """The liteshift operator (every handler) with these promotion settings in its memo."""

    with running_operator(cluster.url, {PROMOTION_MEMO_KEY: settings}):
        yield


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tokens_secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"api-token": _b64(API_TOKEN), "admin-token": _b64(ADMIN_TOKEN)},
    }


def dsn_secret(name: str, dsn: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {"dsn": _b64(dsn)},
    }


def datastore(name: str, **spec: Any) -> dict[str, Any]:
    """A Datastore using the test's tokens, an external Postgres (Secret `<name>-pg`), no
    scheduled backups (they would only add noise), plus `spec`."""
    base: dict[str, Any] = {
        "auth": {"secretRef": {"name": f"{name}-tokens"}},
        "postgres": {"mode": "external", "external": {"dsnSecretRef": {"name": f"{name}-pg"}}},
        "backup": {"enabled": False},
    }
    return {
        "apiVersion": "liteshift.io/v1alpha1",
        "kind": "Datastore",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {**base, **spec},
    }


def create_datastore(cluster: Cluster, name: str, dsn: str, **spec: Any) -> None:
    cluster.create("Secret", tokens_secret(f"{name}-tokens"))
    cluster.create("Secret", dsn_secret(f"{name}-pg", dsn))
    cluster.create("Datastore", datastore(name, **spec))


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict((cluster.get("Datastore", name) or {}).get("status") or {})


def promotion(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(status(cluster, name).get("promotion") or {})


def condition(cluster: Cluster, name: str, kind: str) -> dict[str, Any]:
    for cond in status(cluster, name).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def events(cluster: Cluster, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in cluster.list("Event")
        if e.get("involvedObject", {}).get("name") == name
        and (reason is None or e.get("reason") == reason)
    ]


def annotate(cluster: Cluster, name: str, key: str, value: str) -> None:
    cluster.patch("Datastore", name, {"metadata": {"annotations": {key: value}}})


def postgres_tables(dsn: str) -> set[str]:
    """Tables in the public schema (none: nothing was ever migrated or copied there)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {str(row[0]) for row in rows}


def seeded_sidecar(tmp_path: Path, rows: int, *, batch_rows: int | None = None) -> SidecarProcess:
    """A `liteshift serve` process (not started yet) for the Datastore apps/shop, on a SQLite
    file seeded with `rows` messages. `batch_rows=1` (one row per COPY batch) makes the copy
    of a few 10 000 rows last seconds: long enough to interrupt."""
    process = SidecarProcess(tmp_path, "shop", "apps")
    if batch_rows is not None:
        process.env["LITESHIFT_PROMOTION_BATCH_ROWS"] = str(batch_rows)
    seed(tmp_path / "data" / "liteshift.db", rows)
    return process
