"""Bearer tokens: the configured ones, or generated once and kept in 0600 files.

A generated token is written to `<token dir>/api-token` / `admin-token` and reused on the next
start, so clients keep working across restarts of `liteshift serve`.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from liteshift.sidecar.settings import Settings, SettingsError


@dataclass(frozen=True)
class Tokens:
    """The two bearer tokens and, for generated ones, the file each was written to."""

    api: str
    admin: str
    api_file: Path | None = None
    admin_file: Path | None = None


def resolve_tokens(settings: Settings) -> Tokens:
    """The configured tokens, generating (and persisting) whichever is not configured."""
    api, api_file = _one(settings.api_token, settings.resolved_token_dir() / "api-token")
    admin, admin_file = _one(settings.admin_token, settings.resolved_token_dir() / "admin-token")
    if secrets.compare_digest(api.encode(), admin.encode()):
        raise SettingsError("LITESHIFT_ADMIN_TOKEN", "must differ from LITESHIFT_API_TOKEN")
    return Tokens(api=api, admin=admin, api_file=api_file, admin_file=admin_file)


def _one(configured: str | None, path: Path) -> tuple[str, Path | None]:
    if configured:
        return configured, None
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    except OSError as exc:
        raise SettingsError("LITESHIFT_TOKEN_DIR", f"cannot read {path}: {exc.strerror}") from exc
    if existing:
        return existing, path
    token = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL + mode 0600 at creation: the token is never readable by others, not even briefly.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
    except FileExistsError:
        return _one(None, path)
    except OSError as exc:
        raise SettingsError("LITESHIFT_TOKEN_DIR", f"cannot write {path}: {exc.strerror}") from exc
    return token, path
