"""Generated ids are canonical, distinct version-4 UUIDs."""

from __future__ import annotations

import uuid

from liteshift.sidecar.ids import UuidSource


def test_ids_are_canonical_version_4_uuids_and_never_repeat() -> None:
    source = UuidSource()
    ids = [source() for _ in range(3000)]  # several refills of the 256-id buffer
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lowercase, hyphenated: the store's canonical form
