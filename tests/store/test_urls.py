"""Database URLs (liteshift/store/urls.py)."""

from __future__ import annotations

import pytest

from liteshift.store.errors import BadURL
from liteshift.store.urls import parse_url, redact


@pytest.mark.parametrize(
    ("url", "engine", "target"),
    [
        ("sqlite:///tmp/x.db", "sqlite", "/tmp/x.db"),
        ("sqlite:////tmp/x.db", "sqlite", "/tmp/x.db"),
        ("sqlite:///./liteshift-data/liteshift.db", "sqlite", "./liteshift-data/liteshift.db"),
        ("sqlite:///../up/x.db", "sqlite", "../up/x.db"),
        ("postgresql://u:p@h:5432/db", "postgres", "postgresql://u:p@h:5432/db"),
        ("postgres://h/db", "postgres", "postgres://h/db"),
    ],
)
def test_parse(url: str, engine: str, target: str) -> None:
    parsed = parse_url(url)
    assert (parsed.engine, parsed.target) == (engine, target)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "empty"),
        ("mysql://h/db", "unknown scheme 'mysql'"),
        ("sqlite:x.db", "use sqlite:///"),
        ("sqlite://host/x.db", "host names are not allowed"),
        ("sqlite:///", "no file path"),
        ("sqlite:///:memory:", "in-memory"),
        ("sqlite:///x.db?mode=ro", "query parameters"),
        ("/tmp/x.db", "unknown scheme"),
    ],
)
def test_refused(url: str, reason: str) -> None:
    with pytest.raises(BadURL) as exc:
        parse_url(url)
    assert reason in str(exc.value)
    assert "\n" not in str(exc.value)


def test_passwords_never_shown() -> None:
    assert redact("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert redact("postgresql://app@db/x") == "postgresql://app@db/x"
    with pytest.raises(BadURL) as exc:
        parse_url("mysql://app:s3cret@db/x")
    assert "s3cret" not in str(exc.value)
    assert parse_url("postgresql://app:s3cret@db/x").display() == "postgresql://app:***@db/x"
