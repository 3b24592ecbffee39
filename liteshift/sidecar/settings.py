"""The sidecar's settings, read from the environment (docs/configuration.md is the contract)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from liteshift.errors import LiteshiftError
from liteshift.store.urls import parse_url

DEFAULT_DB_URL = "sqlite:///./liteshift-data/liteshift.db"


class SettingsError(LiteshiftError):
    """A setting has a value the sidecar cannot use."""

    code = "bad_setting"

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")


@dataclass(frozen=True)
class Settings:
    """Everything `create_app` and `liteshift serve` need; build with `Settings.from_env()`."""

    db_url: str = DEFAULT_DB_URL
    host: str = "127.0.0.1"
    port: int = 8080
    datastore: str = "local"
    namespace: str = "default"
    api_token: str | None = None
    admin_token: str | None = None
    token_dir: Path | None = None
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    migrate_on_start: bool = True
    media_enabled: bool = False
    media_db_url: str | None = None
    backup_dir: Path = Path("./liteshift-data/backups")
    max_body_bytes: int = 1_048_576
    vector_dimension: int = 384
    log_format: Literal["text", "json"] = "text"
    #: Postgres URL a promoted SQLite file is served from (docs/promotion.md, "In the sidecar").
    promotion_target_url: str | None = None
    #: Rows per COPY batch of an online promotion (None: the library's default, 10000).
    promotion_batch_rows: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read `LITESHIFT_*` variables; `overrides` (command-line flags) win when not None."""
        env = os.environ if environ is None else environ
        settings = cls(
            db_url=_secret(env, "LITESHIFT_DB_URL") or DEFAULT_DB_URL,
            host=env.get("LITESHIFT_HOST", "127.0.0.1"),
            port=_int(env, "LITESHIFT_PORT", 8080, low=0, high=65535),
            datastore=env.get("LITESHIFT_DATASTORE", "local"),
            namespace=env.get("LITESHIFT_NAMESPACE", "default"),
            api_token=_secret(env, "LITESHIFT_API_TOKEN"),
            admin_token=_secret(env, "LITESHIFT_ADMIN_TOKEN"),
            token_dir=Path(env["LITESHIFT_TOKEN_DIR"]) if env.get("LITESHIFT_TOKEN_DIR") else None,
            sqlite_synchronous=_choice(  # type: ignore[arg-type]
                env, "LITESHIFT_SQLITE_SYNCHRONOUS", ("FULL", "NORMAL"), "FULL", upper=True
            ),
            migrate_on_start=_bool(env, "LITESHIFT_MIGRATE_ON_START", True),
            media_enabled=_bool(env, "IMAGE_PROCESSING_ENABLED", False),
            media_db_url=_secret(env, "LITESHIFT_MEDIA_DB_URL"),
            backup_dir=Path(env.get("LITESHIFT_BACKUP_DIR", "./liteshift-data/backups")),
            max_body_bytes=_int(env, "LITESHIFT_MAX_BODY_BYTES", 1_048_576, low=1, high=1 << 31),
            vector_dimension=_int(env, "LITESHIFT_VECTOR_DIMENSION", 384, low=1, high=65536),
            log_format=_choice(  # type: ignore[arg-type]
                env, "LITESHIFT_LOG_FORMAT", ("text", "json"), "text"
            ),
            promotion_target_url=_secret(env, "LITESHIFT_PROMOTION_TARGET_URL"),
            promotion_batch_rows=(
                _int(env, "LITESHIFT_PROMOTION_BATCH_ROWS", 0, low=1, high=1_000_000)
                if env.get("LITESHIFT_PROMOTION_BATCH_ROWS")
                else None
            ),
        )
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
        settings = replace(settings, db_url=absolute_sqlite_url(settings.db_url))
        if settings.promotion_target_url is not None:
            _require_postgres("LITESHIFT_PROMOTION_TARGET_URL", settings.promotion_target_url)
        if settings.media_enabled and not settings.media_db_url:
            raise SettingsError(
                "LITESHIFT_MEDIA_DB_URL", "required when IMAGE_PROCESSING_ENABLED is true"
            )
        return settings

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file of `db_url`, or None for Postgres."""
        try:
            url = parse_url(self.db_url)
        except LiteshiftError:
            return None
        return Path(url.target) if url.engine == "sqlite" else None

    def resolved_token_dir(self) -> Path:
        """Where generated tokens go: LITESHIFT_TOKEN_DIR, else next to the SQLite file."""
        if self.token_dir is not None:
            return self.token_dir
        path = self.sqlite_path
        return path.parent if path is not None else Path("./liteshift-data")


def absolute_sqlite_url(url: str) -> str:
    """`sqlite:///./x.db` → `sqlite:////cwd/x.db`: a relative file is resolved once, at start,
    so the store, the readiness check and the token directory all mean the same file."""
    prefix = "sqlite:///"
    # The store's URL rule (liteshift.store.urls): only a first component `.` or `..` is
    # relative; `sqlite:///tmp/x.db` is the absolute /tmp/x.db.
    if url.startswith((prefix + "./", prefix + "../")):
        return prefix + str(Path(url[len(prefix) :]).absolute())
    return url


def _require_postgres(name: str, url: str) -> None:
    try:
        parsed = parse_url(url)
    except LiteshiftError as exc:
        raise SettingsError(name, str(exc)) from None
    if parsed.engine != "postgres":
        raise SettingsError(name, "must be a postgresql:// URL")


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """`NAME` itself, else the stripped content of the file named by `NAME_FILE`."""
    value = env.get(name)
    if value:
        return value
    file_name = env.get(f"{name}_FILE")
    if not file_name:
        return None
    try:
        content = Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{name}_FILE", f"cannot read {file_name}: {exc.strerror}") from exc
    if not content:
        raise SettingsError(f"{name}_FILE", f"{file_name} is empty")
    return content


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(name, f"{raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(name, f"{value} is outside {low}..{high}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(name, f"{raw!r} is not a boolean (true/false)")


def _choice(
    env: Mapping[str, str],
    name: str,
    allowed: tuple[str, ...],
    default: str,
    *,
    upper: bool = False,
) -> str:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.upper() if upper else raw.lower()
    if value not in allowed:
        raise SettingsError(name, f"{raw!r} is not one of {', '.join(allowed)}")
    return value
