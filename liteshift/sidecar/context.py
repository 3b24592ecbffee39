"""`Sidecar`: the running app's shared objects, handed to every handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from liteshift.sidecar.metrics import Metrics
from liteshift.sidecar.settings import Settings
from liteshift.sidecar.tokens import Tokens
from liteshift.store import Store

if TYPE_CHECKING:
    from liteshift.sidecar.promotion import Promoter


@dataclass
class Sidecar:
    """Settings, store, metrics and tokens of one app (one per `create_app`)."""

    settings: Settings
    store: Store
    metrics: Metrics
    tokens: Tokens
    #: The OpenAPI document, rendered once from the route table.
    openapi: bytes = b"{}"
    #: Facts admin routes report (e.g. migrations applied at start).
    facts: dict[str, object] = field(default_factory=dict)
    #: The online promotion of this sidecar's store (`/admin/promotion`).
    promoter: Promoter | None = None
