"""`AdminClient` against a real sidecar (uvicorn on loopback, SQLite in tmp, a real Postgres
as the promotion target): answers and every kind of failure become the right typed error."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from liteshift.admin_client import (
    AdminClient,
    PromotionConflict,
    SidecarBusy,
    SidecarRefused,
    SidecarUnreachable,
)
from liteshift.local.ports import free_port
from tests.sidecar.conftest import ADMIN_TOKEN, API_TOKEN, make_sidecar, serve_in_thread


def test_create_list_prune_and_refusals(tmp_path: Path) -> None:
    sidecar = make_sidecar(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    live = serve_in_thread(sidecar.app)
    try:
        client = AdminClient(live.url, ADMIN_TOKEN, timeout=60)
        first = asyncio.run(client.create_backup(compression="gzip", full_check=False))
        assert first["compression"] == "gzip"
        second = asyncio.run(client.create_backup(compression="none", full_check=True))
        listed = asyncio.run(client.list_backups())
        assert [b["name"] for b in listed] == [first["id"], second["id"]]
        pruned = asyncio.run(client.prune(keep_last=1, max_age=None))
        assert pruned == {"deleted": [{"name": first["id"], "reason": "beyond keep-last 1"}],
                          "kept": 1}  # fmt: skip

        with pytest.raises(SidecarRefused) as refused:
            asyncio.run(AdminClient(live.url, API_TOKEN).list_backups())
        assert (refused.value.status, refused.value.error) == (403, "forbidden")
        assert not isinstance(refused.value, SidecarBusy)
        with pytest.raises(SidecarRefused) as refused:
            asyncio.run(client.create_backup(compression="lz4", full_check=False))
        assert refused.value.status == 422
        assert "validation_error" in str(refused.value)
    finally:
        live.stop()


def test_unreachable_sidecar_is_one_readable_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SidecarUnreachable) as down:
        asyncio.run(AdminClient(url, "t", timeout=5).create_backup(compression="none",
                                                                   full_check=False))  # fmt: skip
    assert str(down.value).startswith(f"sidecar admin API at {url} is unreachable: ")
    assert "\n" not in str(down.value)


def _until_settled(client: AdminClient) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        doc = asyncio.run(client.promotion_status())
        if doc["state"] in ("Promoted", "RolledBack"):
            return doc
        assert time.monotonic() < deadline, doc
        time.sleep(0.05)


def test_promotion_start_status_abort_and_conflicts(tmp_path: Path, postgres_dsn: str) -> None:
    sidecar = make_sidecar(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path)
    live = serve_in_thread(sidecar.app)
    try:
        client = AdminClient(live.url, ADMIN_TOKEN, timeout=60)
        assert asyncio.run(client.promotion_status())["state"] == "Idle"
        with pytest.raises(SidecarRefused) as refused:
            asyncio.run(client.start_promotion("sqlite:///elsewhere.db"))
        assert refused.value.status == 400
        assert not isinstance(refused.value, PromotionConflict)
        # Nothing runs: an abort is not a conflict.
        assert asyncio.run(client.abort_promotion())["state"] == "Idle"

        started = asyncio.run(client.start_promotion(postgres_dsn))
        assert started["state"] in ("ReadinessChecks", "Copying", "CatchingUp", "Verifying",
                                    "CuttingOver", "Promoted")  # fmt: skip
        done = _until_settled(client)
        assert done["state"] == "Promoted", done
        assert isinstance(done["write_pause_ms"], float)
        # Idempotent: asking again answers Promoted; an abort after the cutover is a conflict.
        assert asyncio.run(client.start_promotion(postgres_dsn))["state"] == "Promoted"
        with pytest.raises(PromotionConflict) as conflict:
            asyncio.run(client.abort_promotion())
        assert (conflict.value.status, conflict.value.error) == (409, "already_promoted")
        with pytest.raises(SidecarRefused) as forbidden:
            asyncio.run(AdminClient(live.url, API_TOKEN).promotion_status())
        assert forbidden.value.status == 403
    finally:
        live.stop()
