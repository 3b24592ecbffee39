"""Parsing of database URLs: `sqlite:///path` and `postgresql://…`.

`sqlite:///tmp/x.db` is the absolute path /tmp/x.db (as in file:// URLs); a path whose first
component is `.` or `..` (`sqlite:///./data/x.db`) is relative to the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from liteshift.store.errors import BadURL


@dataclass(frozen=True)
class DatabaseURL:
    engine: Literal["sqlite", "postgres"]
    #: The SQLite file path, or the libpq connection string for Postgres.
    target: str

    def display(self) -> str:
        """The URL without a password, safe for logs and error messages."""
        if self.engine == "sqlite":
            return f"sqlite file {self.target}"
        return redact(self.target)


def redact(dsn: str) -> str:
    """`postgresql://user:secret@host/db` → `postgresql://user:***@host/db`."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or "@" not in rest:
        return dsn
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else dsn


def parse_url(url: str) -> DatabaseURL:
    """Split a liteshift database URL; raises BadURL."""
    if not isinstance(url, str) or not url.strip():
        raise BadURL(str(url), "empty; use sqlite:///path or postgresql://host/db")
    if url.startswith("sqlite:"):
        rest = url[len("sqlite:") :]
        if not rest.startswith("//"):
            raise BadURL(url, "use sqlite:///absolute/path or sqlite:///./relative/path")
        path = rest[2:]
        if "?" in path or "#" in path:
            raise BadURL(url, "query parameters are not supported; pass options instead")
        if path in ("", "/"):
            raise BadURL(url, "no file path")
        if path in {"/:memory:", ":memory:"}:
            raise BadURL(url, "in-memory SQLite cannot be shared by the writer and readers")
        if not path.startswith("/"):
            raise BadURL(url, "host names are not allowed in sqlite URLs (sqlite:///path)")
        if path.startswith(("/./", "/../")):
            path = path[1:]
        while path.startswith("//"):
            path = path[1:]
        return DatabaseURL("sqlite", path)
    if url.startswith(("postgresql://", "postgres://")):
        return DatabaseURL("postgres", url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise BadURL(redact(url), f"unknown scheme {scheme!r}; use sqlite:///path or postgresql://…")
