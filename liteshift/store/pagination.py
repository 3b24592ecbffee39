"""Opaque keyset cursors: base64url of the last row's sort key, checked on the way back in."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from liteshift.store.errors import ValidationError
from liteshift.store.validation import timestamp


def encode_time_key(created_at: datetime, row_id: str) -> str:
    raw = json.dumps(["t", created_at.isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def encode_name_key(name: str) -> str:
    raw = json.dumps(["n", name], separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: object) -> list[object]:
    if not isinstance(cursor, str) or not cursor or len(cursor) > 4096:
        raise ValidationError("cursor", "not a cursor returned by this API")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ValidationError("cursor", "not a cursor returned by this API") from None
    if not isinstance(value, list):
        raise ValidationError("cursor", "not a cursor returned by this API")
    return value


def decode_time_key(cursor: object) -> tuple[datetime, str]:
    value = _decode(cursor)
    if len(value) != 3 or value[0] != "t" or not all(isinstance(v, str) for v in value[1:]):
        raise ValidationError("cursor", "not a cursor of this list")
    try:
        created_at = datetime.fromisoformat(str(value[1]))
    except ValueError:
        raise ValidationError("cursor", "not a cursor of this list") from None
    return timestamp("cursor", created_at), str(value[2])


def decode_name_key(cursor: object) -> str:
    value = _decode(cursor)
    if len(value) != 2 or value[0] != "n" or not isinstance(value[1], str):
        raise ValidationError("cursor", "not a cursor of this list")
    return value[1]
