"""The root of liteshift's typed errors.

Every error a person can cause (bad input, bad URL, unreachable server) is a `LiteshiftError`
subclass with fields; its `str()` is one readable line. The CLI prints that line and exits
non-zero; the sidecar maps subclasses to HTTP statuses. Anything else is a bug.
"""

from __future__ import annotations


class LiteshiftError(Exception):
    """Base class of every error liteshift reports to a person."""

    #: Short machine-readable code used in JSON error bodies and logs.
    code: str = "error"
