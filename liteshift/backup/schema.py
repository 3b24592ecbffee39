"""The newest schema version this liteshift knows: restore refuses anything newer."""

from __future__ import annotations

import re
from pathlib import Path

import liteshift

_MIGRATION = re.compile(r"^(\d{4,})_[A-Za-z0-9_]+")


def migrations_dir() -> Path | None:
    """`liteshift/_migrations` in an installed wheel, the top-level `migrations/` in a checkout."""
    package = Path(liteshift.__file__).parent
    for candidate in (package / "_migrations", package.parent / "migrations"):
        if candidate.is_dir():
            return candidate
    return None


def known_schema_version(directory: Path | None = None) -> int | None:
    """Highest primary-store `NNNN_name` migration shipped here (None: no migrations at all)."""
    directory = directory or migrations_dir()
    if directory is None:
        return None
    versions = [
        int(match[1])
        for path in directory.iterdir()
        if (match := _MIGRATION.match(path.name)) is not None
    ]
    return max(versions, default=None)
