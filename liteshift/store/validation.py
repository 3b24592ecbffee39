"""Rules that make both engines accept exactly the same data.

Every value is checked here, identically for SQLite and Postgres, before an engine writes it.
A value one engine would store and the other would reject or silently change is refused with
`ValidationError(field, reason)`, so a later promotion never meets data it cannot move:

- text: valid UTF-8 (no lone surrogates) and no NUL (Postgres text rejects \\x00);
- integers: signed 64-bit (Postgres bigint, SQLite INTEGER);
- floats: finite (SQLite turns NaN into NULL, jsonb has no NaN/Infinity); in JSON, -0.0 is
  stored as 0.0 because jsonb's numeric has no negative zero, and integral floats of 1e16 or
  more become the integer jsonb would return (1e16 → 10000000000000000);
- timestamps: timezone-aware, normalized to UTC, years 1..9999 (Python's range, inside both);
- ids: canonical lowercase UUID text;
- JSON: objects with string keys, no duplicate keys (jsonb keeps the last silently), no \\u0000,
  nesting at most `MAX_JSON_DEPTH`;
- vectors: exactly the store's dimension, finite, representable as float32.
"""

from __future__ import annotations

import json
import math
import re
import struct
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from liteshift.store.errors import ValidationError
from liteshift.store.models import JsonObject, JsonValue

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_JSON_DEPTH = 64
FLOAT32_MAX = 3.4028234663852886e38
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def text(field: str, value: object, *, allow_empty: bool = True) -> str:
    """A str both engines store byte for byte."""
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL character (\\x00)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(field, "is not valid UTF-8 (lone surrogate)") from None
    if not allow_empty and not value.strip():
        raise ValidationError(field, "must not be empty")
    return value


def optional_text(field: str, value: object, *, allow_empty: bool = True) -> str | None:
    return None if value is None else text(field, value, allow_empty=allow_empty)


def name(field: str, value: object) -> str:
    """A short identifier-like text (role, kind, type, cursor name): non-empty, ≤ 200 chars."""
    result = text(field, value, allow_empty=False)
    if len(result) > 200:
        raise ValidationError(field, "longer than 200 characters")
    return result


def integer(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, f"must be an integer, not {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValidationError(field, "outside the signed 64-bit range")
    return value


def finite_float(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(field, f"must be a number, not {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ValidationError(field, "must be finite (no NaN or Infinity)")
    return result


def timestamp(field: str, value: object) -> datetime:
    """A timezone-aware datetime, returned in UTC."""
    if not isinstance(value, datetime):
        raise ValidationError(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(field, "must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(field, "outside the years 1..9999 in UTC") from None


def optional_timestamp(field: str, value: object) -> datetime | None:
    return None if value is None else timestamp(field, value)


def uuid_text(field: str, value: object) -> str:
    """A canonical lowercase UUID (8-4-4-4-12 hex digits)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if not isinstance(value, str) or not _UUID_RE.match(value):
        raise ValidationError(field, "must be a canonical lowercase UUID")
    return value


def new_or_uuid(field: str, value: object) -> str:
    return str(uuid.uuid4()) if value is None else uuid_text(field, value)


def json_object(field: str, value: object) -> JsonObject:
    """A JSON object (dict) both engines round-trip to an equal value; returns a clean copy."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(field, f"must be a JSON object, not {type(value).__name__}")
    result = _json_value(field, value, 0)
    assert isinstance(result, dict)
    return result


def _json_value(field: str, value: object, depth: int) -> JsonValue:
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(field, f"nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return integer(field, value)
    if isinstance(value, float):
        result = finite_float(field, value)
        if result == 0:
            return 0.0
        if abs(result) >= 1e16 and result.is_integer():
            # jsonb prints 1e16 as 10000000000000000 (an integer when read back): store that
            # integer on both engines so both return the same value and type.
            return int(Decimal(repr(result)))
        return result
    if isinstance(value, str):
        return text(field, value)
    if isinstance(value, list | tuple):
        return [_json_value(field, item, depth + 1) for item in value]
    if isinstance(value, dict):
        out: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, f"object keys must be strings, not {key!r}")
            text(field, key)
            out[key] = _json_value(field, item, depth + 1)
        return out
    raise ValidationError(field, f"{type(value).__name__} is not a JSON value")


def parse_json_object(field: str, raw: str | bytes) -> JsonObject:
    """Parse JSON text under the same rules, refusing duplicate keys and NaN/Infinity.

    `json.loads` keeps the last of duplicate keys silently (as jsonb does); callers that receive
    JSON text (the sidecar) use this to refuse them instead.
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, item in items:
            if key in seen:
                raise ValidationError(field, f"duplicate object key {key!r}")
            seen[key] = item
        return seen

    def no_constant(token: str) -> Any:
        raise ValidationError(field, f"{token} is not valid JSON")

    try:
        value = json.loads(raw, object_pairs_hook=pairs, parse_constant=no_constant)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(field, f"not valid JSON: {exc}") from None
    return json_object(field, value)


#: `json.dumps` with these options builds a new encoder per call; one shared (stateless) encoder
#: gives the same text for less.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def dump_json(value: JsonValue) -> str:
    """The canonical compact text SQLite stores (sorted keys, no spaces, UTF-8 as is)."""
    return _CANONICAL.encode(value)


def vector(field: str, value: object, dimension: int) -> tuple[float, ...]:
    """A vector of `dimension` finite float32 values, rounded to float32 as both engines keep it."""
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise ValidationError(field, "must be a list of numbers")
    items = [finite_float(field, item) for item in value]
    if len(items) != dimension:
        raise ValidationError(field, f"has {len(items)} dimensions, the store uses {dimension}")
    if any(abs(item) > FLOAT32_MAX for item in items):
        raise ValidationError(field, "a value is outside the float32 range")
    return struct.unpack(f"<{dimension}f", struct.pack(f"<{dimension}f", *items))


def limit(value: object, maximum: int) -> int:
    result = integer("limit", value)
    if not 1 <= result <= maximum:
        raise ValidationError("limit", f"must be between 1 and {maximum}")
    return result
