"""Verification catches a changed, missing or extra row and names the table."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from liteshift.promotion.copy import copy_data
from liteshift.promotion.errors import VerificationFailed
from liteshift.promotion.loose import ScanResult, scan
from liteshift.promotion.readiness import check_readiness
from liteshift.promotion.verify import verify
from liteshift.store.transfer import SqliteSnapshot


@pytest.fixture
def copied(filled_sqlite: Path, postgres_dsn: str) -> ScanResult:
    check_readiness(postgres_dsn)
    with SqliteSnapshot(str(filled_sqlite)) as snapshot:
        scanned = scan(snapshot)
        copy_data(snapshot, postgres_dsn)
    assert verify(postgres_dsn, scanned.checksums).ok
    return scanned


@pytest.mark.parametrize(
    ("table", "tamper"),
    [
        ("messages", "UPDATE messages SET content = content || ' ' WHERE ctid = "
         "(SELECT ctid FROM messages LIMIT 1)"),
        ("events", "UPDATE events SET payload = payload || '{\"x\": 1}' WHERE ctid = "
         "(SELECT ctid FROM events LIMIT 1)"),
        ("proposals", "UPDATE proposals SET created_at = created_at + interval '1 microsecond' "
         "WHERE ctid = (SELECT ctid FROM proposals LIMIT 1)"),
        ("embeddings", "UPDATE embeddings SET vector[1] = vector[1] + 1 WHERE ctid = "
         "(SELECT ctid FROM embeddings LIMIT 1)"),
        ("etl_cursors", "DELETE FROM etl_cursors WHERE ctid = "
         "(SELECT ctid FROM etl_cursors LIMIT 1)"),
        ("agent_messages", "INSERT INTO agent_messages SELECT 'extra', conversation_id, agent, "
         "recipient, content, metadata, created_at FROM agent_messages LIMIT 1"),
    ],
)  # fmt: skip
def test_a_tampered_postgres_row_fails_verification_naming_the_table(
    copied: ScanResult, postgres_dsn: str, table: str, tamper: str
) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute(tamper).rowcount == 1
    report = verify(postgres_dsn, copied.checksums)
    assert not report.ok
    assert report.failed == [table]
    with pytest.raises(VerificationFailed, match=f"verification failed: {table}:") as info:
        report.raise_if_failed()
    assert info.value.tables == [table]
