"""Route tables, one module per resource; `all_operations` assembles the app's table."""

from __future__ import annotations

from liteshift.sidecar.routes import (
    admin,
    admin_backups,
    admin_promotion,
    agent_messages,
    cursors,
    embeddings,
    events,
    health,
    media,
    messages,
    proposals,
)
from liteshift.sidecar.routing import Operation


def all_operations(*, media_enabled: bool) -> list[Operation]:
    """Every operation the app mounts; media routes only when media is enabled."""
    ops = [
        *health.OPERATIONS,
        *messages.OPERATIONS,
        *proposals.OPERATIONS,
        *events.OPERATIONS,
        *agent_messages.OPERATIONS,
        *embeddings.OPERATIONS,
        *cursors.OPERATIONS,
        *admin.OPERATIONS,
        *admin_backups.OPERATIONS,
        *admin_promotion.OPERATIONS,
    ]
    if media_enabled:
        ops.extend(media.OPERATIONS)
    return ops
