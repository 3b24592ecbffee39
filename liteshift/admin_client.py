"""An async client of a sidecar's admin API: `/admin/backups` (the operator's backup handlers)
and `/admin/promotion` (its promotion handler).

It lives outside `liteshift.operator` on purpose: that package keeps every Kubernetes API call
in `operator/kube.py` (tests hold it to that by its imports), and this talks to sidecars, not
to Kubernetes. Every failure becomes one typed error whose `str()` a person can act on.
"""

from __future__ import annotations

from typing import Any

import httpx

from liteshift.errors import LiteshiftError


class SidecarError(LiteshiftError):
    """Base of the errors talking to a sidecar's admin API."""

    code = "sidecar_error"


class SidecarUnreachable(SidecarError):
    """No HTTP answer: the sidecar is down, not ready, or the URL is wrong."""

    code = "sidecar_unreachable"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"sidecar admin API at {url} is unreachable: {reason}")


class SidecarRefused(SidecarError):
    """The sidecar answered with an error body `{error, detail}`."""

    code = "sidecar_refused"

    def __init__(self, url: str, status: int, error: str, detail: Any) -> None:
        self.url = url
        self.status = status
        self.error = error
        self.detail = detail
        super().__init__(f"sidecar at {url} answered {status} {error}: {detail}")


class SidecarBusy(SidecarRefused):
    """409 `backup_in_progress`: another backup runs on that sidecar; retry later."""

    code = "sidecar_busy"


class PromotionConflict(SidecarRefused):
    """409 from `/admin/promotion`: `promotion_in_progress` (another target is being promoted
    to) or `already_promoted` (an abort after the cutover)."""

    code = "promotion_conflict"


class AdminClient:
    """Calls one sidecar's admin API with its admin token. Each call opens its own connection:
    calls are rare (a schedule) and a long backup must not pin a pool."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 3600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        # Connecting must be quick (a dead sidecar is reported at once); the backup itself
        # may take as long as a large database needs.
        self._timeout = httpx.Timeout(timeout, connect=min(10.0, timeout))

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as http:
                response = await http.request(method, url, json=body, headers=self._headers)
        except httpx.HTTPError as exc:
            raise SidecarUnreachable(self.base_url, str(exc) or type(exc).__name__) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            error = data.get("error", "error") if isinstance(data, dict) else "error"
            detail = data.get("detail", response.text) if isinstance(data, dict) else response.text
            kind: type[SidecarRefused] = SidecarRefused
            if error == "backup_in_progress":
                kind = SidecarBusy
            elif response.status_code == 409 and path.startswith("/admin/promotion"):
                kind = PromotionConflict
            raise kind(self.base_url, response.status_code, str(error), detail)
        if not isinstance(data, dict):
            raise SidecarRefused(self.base_url, response.status_code, "bad_response",
                                 "the answer is not a JSON object")  # fmt: skip
        return data

    async def create_backup(self, *, compression: str, full_check: bool) -> dict[str, Any]:
        """`POST /admin/backups`: take a verified backup now; the manifest as a dict."""
        result: dict[str, Any] = await self._call(
            "POST", "/admin/backups", {"compression": compression, "full_check": full_check}
        )
        return result

    async def list_backups(self) -> list[dict[str, Any]]:
        """`GET /admin/backups`: every backup directory, oldest first."""
        result = await self._call("GET", "/admin/backups")
        backups: list[dict[str, Any]] = result.get("backups") or []
        return backups

    async def prune(self, *, keep_last: int | None, max_age: str | None) -> dict[str, Any]:
        """`POST /admin/backups/prune`: apply retention; `{deleted: [...], kept: N}`."""
        result: dict[str, Any] = await self._call(
            "POST", "/admin/backups/prune", {"keep_last": keep_last, "max_age": max_age}
        )
        return result

    async def start_promotion(self, target_url: str) -> dict[str, Any]:
        """`POST /admin/promotion`: start (or join) the online promotion to `target_url`.

        Idempotent: a run to the same target answers with that run's status document, a
        promoted sidecar with state Promoted. Raises PromotionConflict for another target.
        """
        result: dict[str, Any] = await self._call(
            "POST", "/admin/promotion", {"target_url": target_url}
        )
        return result

    async def promotion_status(self) -> dict[str, Any]:
        """`GET /admin/promotion`: the status document (state, progress, write pause, …)."""
        result: dict[str, Any] = await self._call("GET", "/admin/promotion")
        return result

    async def abort_promotion(self) -> dict[str, Any]:
        """`POST /admin/promotion/abort`: before the cutover, stop and return to SQLite (state
        RolledBack); raises PromotionConflict (`already_promoted`) after it."""
        result: dict[str, Any] = await self._call("POST", "/admin/promotion/abort")
        return result
