"""Connection helpers: a malformed or unreachable DSN is one readable line without its password."""

from __future__ import annotations

import pytest

from liteshift.store.connect import check_url, pg_connect
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
