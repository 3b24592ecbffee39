"""Connection helpers: a malformed or unreachable DSN is one readable line without its password."""

from __future__ import annotations

import logging
from pathlib import Path

import apsw
import pytest

from liteshift.store.connect import check_url, pg_connect, sqlite_connect
from liteshift.store.errors import BadURL, StoreUnavailable
from liteshift.store.urls import parse_url

MALFORMED = "postgresql://app:s3cret-pw@[::1/db"


def test_a_malformed_dsn_is_refused_without_its_password() -> None:
    with pytest.raises(BadURL) as refused:
        check_url(parse_url(MALFORMED))
    assert "s3cret-pw" not in str(refused.value)
    assert "app:***@" in str(refused.value)
    with pytest.raises(BadURL) as connecting:
        pg_connect(MALFORMED)
    assert "s3cret-pw" not in str(connecting.value)


def test_an_unreachable_server_is_unavailable_without_its_password() -> None:
    # Port 1 on loopback: nothing listens, the refusal is immediate.
    with pytest.raises(StoreUnavailable) as refused:
        pg_connect("postgresql://app:s3cret-pw@127.0.0.1:1/db", timeout=2)
    assert "s3cret-pw" not in str(refused.value)


def test_sqlite_log_keeps_errors_and_quiets_what_the_store_does_on_purpose(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conn = sqlite_connect(str(tmp_path / "x.db"))
    conn.execute("CREATE TABLE t (x)")
    caplog.set_level(logging.DEBUG, logger="liteshift.store.sqlite_log")
    # A long statement interrupted (what the inline-read budget does): DEBUG only.
    conn.set_progress_handler(lambda: 1, 100)
    with pytest.raises(apsw.InterruptError):
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
        ).fetchall()
    conn.set_progress_handler(None)
    # A real error: still ERROR.
    with pytest.raises(apsw.SQLError):
        conn.execute("SELECT * FROM missing_table")
    conn.close()
    records = [r for r in caplog.records if r.name == "liteshift.store.sqlite_log"]
    interrupted = [r for r in records if "interrupt" in r.getMessage().lower()]
    missing = [r for r in records if "missing_table" in r.getMessage()]
    assert interrupted and all(r.levelno == logging.DEBUG for r in interrupted), records
    assert missing and all(r.levelno == logging.ERROR for r in missing), records
