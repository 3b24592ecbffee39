"""Errors raised when a local helper server cannot be found or started."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LocalServerError(Exception):
    """A throwaway server could not be started; `hint` tells the person what to do."""

    server: str
    reason: str
    hint: str = "run scripts/bootstrap.sh (as root it installs the Debian packages)"

    def __str__(self) -> str:
        return f"cannot start {self.server}: {self.reason} ({self.hint})"
