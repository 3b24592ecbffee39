"""Chooses and opens the engine for a parsed URL (the engines land in the next commits)."""

from __future__ import annotations

from typing import Any

from liteshift.store.errors import StoreUnavailable
from liteshift.store.protocol import Store
from liteshift.store.urls import DatabaseURL


def open_engine(url: DatabaseURL, **options: Any) -> Store:
    """Open the engine for `url`; raises StoreUnavailable."""
    raise StoreUnavailable(url.display(), "engine not implemented yet")
