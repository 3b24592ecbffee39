"""The newest schema version this liteshift knows: restore refuses anything newer."""

from __future__ import annotations

from liteshift.store.errors import MigrationError
from liteshift.store.migrations import discover, migrations_dir


def known_schema_version(engine: str = "sqlite") -> int | None:
    """Highest primary-store migration shipped with this liteshift (None: none found)."""
    try:
        migrations = discover(migrations_dir("primary"), engine)
    except MigrationError:
        return None
    return max((m.version for m in migrations), default=None)
