"""A store that goes away answers 503 (readyz and API), never 500, and the process stays up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sidecar.conftest import API, make_sidecar, running


# Each call waits out the store's Postgres pool timeout (5 s) before it reports the
# database unavailable, hence slow.
@pytest.mark.slow
def test_dropped_postgres_database_is_503(
    tmp_path: Path, postgres_dsn: str, postgres_server: Any
) -> None:
    sidecar = make_sidecar(postgres_dsn, tmp_path)
    with running(sidecar) as client:
        assert client.get("/readyz").status_code == 200
        postgres_server.drop_database(postgres_dsn)
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["store"] != "ok" and body["checks"]["migrations"] != "ok"
        response = client.get("/v1/messages", headers=API)
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "store_unavailable"
        write = client.post("/v1/events", headers=API, json={"type": "t", "payload": {}})
        assert write.status_code == 503, write.text
        assert client.get("/healthz").status_code == 200
