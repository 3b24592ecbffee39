"""The manifest: what a backup contains, enough to verify and restore it without the source.

One JSON file, `manifest.json`, next to the data file, written atomically. A backup directory
without a readable, complete manifest is not a backup.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liteshift.backup.compression import COMPRESSIONS, Compression
from liteshift.backup.durable import write_atomically
from liteshift.backup.errors import InvalidManifest

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
ENGINES = ("sqlite", "postgres")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Manifest:
    """Everything recorded about one backup (see docs/backup.md for each field)."""

    id: str
    datastore: str
    namespace: str
    engine: str
    created_at: datetime
    file: str
    size: int
    sha256: str
    compression: Compression
    schema_version: int | None
    row_counts: dict[str, int]
    liteshift_version: str
    check: str
    check_result: str
    duration_seconds: float
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    def write(self, directory: Path) -> Path:
        """Write `manifest.json` into `directory` atomically; return its path."""
        path = directory / MANIFEST_NAME
        write_atomically(path, self.dumps().encode())
        return path

    @classmethod
    def from_json(cls, data: Any, where: Path) -> Manifest:
        """Validate a decoded manifest; raises InvalidManifest naming the first problem."""
        if not isinstance(data, dict):
            raise InvalidManifest(where, "not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            newer = isinstance(version, int) and version > FORMAT_VERSION
            raise InvalidManifest(
                where,
                f"format_version {version!r}, this liteshift reads {FORMAT_VERSION}",
                newer_format=newer,
            )

        def need(key: str, kind: type | tuple[type, ...]) -> Any:
            if key not in data:
                raise InvalidManifest(where, f"field {key!r} is missing")
            value = data[key]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise InvalidManifest(where, f"field {key!r} has the wrong type")
            return value

        engine = need("engine", str)
        if engine not in ENGINES:
            raise InvalidManifest(where, f"unknown engine {engine!r}")
        compression = need("compression", str)
        if compression not in COMPRESSIONS:
            raise InvalidManifest(where, f"unknown compression {compression!r}")
        sha = need("sha256", str)
        if not _SHA256.match(sha):
            raise InvalidManifest(where, "sha256 is not 64 hex digits")
        file_name = need("file", str)
        if "/" in file_name or file_name in ("", ".", ".."):
            raise InvalidManifest(where, f"file {file_name!r} is not a plain file name")
        try:
            created = datetime.fromisoformat(need("created_at", str).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidManifest(where, f"created_at: {exc}") from exc
        if created.tzinfo is None:
            raise InvalidManifest(where, "created_at has no time zone")
        counts = need("row_counts", dict)
        if not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in counts.items()
        ):
            raise InvalidManifest(where, "row_counts must map table names to integers")
        schema_version = data.get("schema_version")
        if schema_version is not None and (
            not isinstance(schema_version, int) or isinstance(schema_version, bool)
        ):
            raise InvalidManifest(where, "schema_version must be an integer or null")
        size = need("size", int)
        if size < 0:
            raise InvalidManifest(where, "size is negative")
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise InvalidManifest(where, "extra must be an object")
        return cls(
            id=need("id", str),
            datastore=need("datastore", str),
            namespace=need("namespace", str),
            engine=engine,
            created_at=created.astimezone(UTC),
            file=file_name,
            size=size,
            sha256=sha,
            compression=compression,
            schema_version=schema_version,
            row_counts=dict(counts),
            liteshift_version=need("liteshift_version", str),
            check=need("check", str),
            check_result=need("check_result", str),
            duration_seconds=float(need("duration_seconds", (int, float))),
            extra=dict(extra),
        )


def read_manifest(directory: Path) -> Manifest:
    """Read and validate `directory/manifest.json`; raises InvalidManifest."""
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InvalidManifest(path, "missing (the backup never completed)") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidManifest(path, f"unreadable: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidManifest(path, f"not valid JSON (truncated?): {exc.msg} at {exc.pos}") from exc
    return Manifest.from_json(data, path)
