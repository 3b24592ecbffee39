"""Typed errors of the store layer: each carries fields, and `str()` is one readable line.

The sidecar maps them to HTTP statuses (NotFound 404, Conflict/CursorConflict 409,
InvalidTransition 409, ValidationError 400, MediaDisabled 404, StoreUnavailable 503,
MigrationError 500-class operator problem); the CLI prints `error: <str>` and exits 1.
"""

from __future__ import annotations

from liteshift.errors import LiteshiftError


class StoreError(LiteshiftError):
    """Base class of every error the store layer raises on purpose."""

    code = "store_error"


class NotFound(StoreError):
    """No row of `kind` has `key`."""

    code = "not_found"

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class Conflict(StoreError):
    """A row of `kind` with `key` already exists (duplicate id or natural key)."""

    code = "conflict"

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} already exists")


class InvalidTransition(StoreError):
    """A state change the domain forbids (a proposal leaves `pending` only once)."""

    code = "invalid_transition"

    def __init__(self, kind: str, key: str, current: str, requested: str) -> None:
        self.kind = kind
        self.key = key
        self.current = current
        self.requested = requested
        super().__init__(f"{kind} {key!r} cannot go from {current!r} to {requested!r}")


class CursorConflict(StoreError):
    """Compare-and-set lost: the ETL cursor is not at the position the worker read."""

    code = "cursor_conflict"

    def __init__(self, name: str, expected: str | None, current: str | None) -> None:
        self.name = name
        self.expected = expected
        self.current = current
        super().__init__(f"etl cursor {name!r} is at {current!r}, not at the expected {expected!r}")


class ValidationError(StoreError):
    """A value one of the engines would reject or change; refused on both, before writing."""

    code = "validation_error"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class MediaDisabled(StoreError):
    """A media operation (attachments, extractions) on a store opened without a media URL."""

    code = "media_disabled"

    def __init__(self, operation: str) -> None:
        self.operation = operation
        super().__init__(
            f"{operation} needs media enabled (IMAGE_PROCESSING_ENABLED with a media database URL)"
        )


class BadURL(StoreError):
    """A database URL liteshift cannot use."""

    code = "bad_url"

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"bad database URL {url!r}: {reason}")


class StoreUnavailable(StoreError):
    """The database cannot be reached or opened (server down, missing directory, …)."""

    code = "store_unavailable"

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"cannot use database {target}: {reason}")


class MigrationError(StoreError):
    """The migration files or the recorded migrations are not in a state that can be applied."""

    code = "migration_error"

    def __init__(self, reason: str, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason} ({path})" if path else reason)
