"""Chooses and opens the engine (and the optional media store) for a parsed URL."""

from __future__ import annotations

from collections.abc import Callable

from liteshift.store.connect import check_url
from liteshift.store.errors import ValidationError
from liteshift.store.media import MediaStore
from liteshift.store.migrations import migrate_up
from liteshift.store.models import OpSample
from liteshift.store.protocol import Store
from liteshift.store.urls import DatabaseURL


def open_engine(
    url: DatabaseURL,
    *,
    media_url: str | None,
    migrate: bool,
    vector_dimension: int,
    vector_index: str,
    synchronous: str,
    busy_timeout_ms: int,
    readers: int,
    pool_size: int,
    batch_max_ops: int,
    batch_max_wait_seconds: float,
    observer: Callable[[OpSample], None] | None,
) -> Store:
    """Open the engine for `url` (see `liteshift.store.open_store`)."""
    check_url(url)
    if synchronous not in ("FULL", "NORMAL"):
        raise ValidationError("synchronous", "must be FULL or NORMAL")
    if vector_index not in ("vec", "vss"):
        raise ValidationError("vector_index", "must be vec or vss")
    if migrate:
        migrate_up(url, "primary")
    media = MediaStore(media_url, pool_size=pool_size, migrate=migrate) if media_url else None
    try:
        if url.engine == "sqlite":
            from liteshift.store.sqlite import SqliteStore  # noqa: PLC0415 - load on use

            return SqliteStore(
                url.target,
                vector_dimension=vector_dimension,
                vector_index=vector_index,
                synchronous=synchronous,
                busy_timeout_ms=busy_timeout_ms,
                readers=readers,
                batch_max_ops=batch_max_ops,
                batch_max_wait_seconds=batch_max_wait_seconds,
                observer=observer,
                media=media,
            )
        from liteshift.store.postgres import PostgresStore  # noqa: PLC0415 - load on use

        return PostgresStore(
            url.target,
            vector_dimension=vector_dimension,
            pool_size=pool_size,
            observer=observer,
            media=media,
        )
    except BaseException:
        if media is not None:
            media.close()
        raise
