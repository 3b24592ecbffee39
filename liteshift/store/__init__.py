"""The repository layer: one domain interface, two engines (SQLite via APSW, Postgres via psycopg).

`open_store(url, **options)` is the entry point; everything else callers need is re-exported
here (models, errors, the `Store` protocol).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from liteshift.store.errors import (
    BadURL,
    Conflict,
    CursorConflict,
    InvalidTransition,
    MediaDisabled,
    MigrationError,
    NotFound,
    StoreError,
    StoreUnavailable,
    ValidationError,
)
from liteshift.store.models import OpSample, Page
from liteshift.store.protocol import Store
from liteshift.store.urls import parse_url

Observer = Callable[[OpSample], None]

__all__ = [
    "BadURL",
    "Conflict",
    "CursorConflict",
    "InvalidTransition",
    "MediaDisabled",
    "MigrationError",
    "NotFound",
    "Observer",
    "OpSample",
    "Page",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "ValidationError",
    "open_store",
]


def open_store(
    url: str,
    *,
    media_url: str | None = None,
    migrate: bool = False,
    vector_dimension: int = 384,
    vector_index: Literal["vec", "vss"] = "vec",
    synchronous: Literal["FULL", "NORMAL"] = "FULL",
    busy_timeout_ms: int = 5000,
    readers: int = 4,
    pool_size: int = 8,
    batch_max_ops: int = 256,
    batch_max_wait_seconds: float = 0.0,
    observer: Observer | None = None,
) -> Store:
    """Open the primary store at `url` (`sqlite:///path` or `postgresql://…`).

    `media_url` (a Postgres URL) enables attachments/extractions; without it nothing touches
    Postgres for media. `migrate=True` applies pending migrations (primary and media) first.
    SQLite only: `vector_index` (sqlite-vec `vec`, default, or sqlite-vss `vss`),
    `synchronous` (docs/durability.md), `busy_timeout_ms`, `readers` (read connections),
    `batch_max_ops`/`batch_max_wait_seconds` (group commit). Postgres only: `pool_size`.
    `observer` is called after every operation with an `OpSample` (metrics hook).
    Raises BadURL, StoreUnavailable, MigrationError, ValidationError (options).
    """
    from liteshift.store.engine import open_engine  # noqa: PLC0415 - engines load lazily

    return open_engine(
        parse_url(url),
        media_url=media_url,
        migrate=migrate,
        vector_dimension=vector_dimension,
        vector_index=vector_index,
        synchronous=synchronous,
        busy_timeout_ms=busy_timeout_ms,
        readers=readers,
        pool_size=pool_size,
        batch_max_ops=batch_max_ops,
        batch_max_wait_seconds=batch_max_wait_seconds,
        observer=observer,
    )
