"""The optional Postgres media store (liteshift/store/media.py), next to either primary engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from liteshift.store import (
    Conflict,
    MediaDisabled,
    NotFound,
    Store,
    StoreUnavailable,
    ValidationError,
    open_store,
)
from liteshift.store.models import AttachmentIn, ExtractionIn, MessageIn
from tests.store.conftest import DIM


def test_media_disabled_needs_no_postgres(tmp_path: Path) -> None:
    """SQLite alone (no Postgres fixture in this test): every media call says media is off."""
    store = open_store(f"sqlite://{tmp_path}/s.db", migrate=True, vector_dimension=DIM)
    try:
        assert store.media_enabled is False
        message = store.create_message(MessageIn("c", "user", "x"))
        some_id = str(uuid.uuid4())
        calls: list[tuple[Any, tuple[Any, ...]]] = [
            (store.create_attachment, (AttachmentIn(message.id, "image/png", "file:///a", 1),)),
            (store.get_attachment, (some_id,)),
            (store.list_attachments, ()),
            (store.create_extraction, (ExtractionIn(some_id, "ocr"),)),
            (store.get_extraction, (some_id,)),
            (store.list_extractions, ()),
        ]
        for method, args in calls:
            with pytest.raises(MediaDisabled):
                method(*args)
            assert isinstance(store.submit(method, *args).exception(), MediaDisabled)
    finally:
        store.close()


@pytest.fixture
def media_dsn(postgres_server: Any) -> Iterator[str]:
    dsn = postgres_server.create_database("liteshift_media")
    try:
        yield dsn
    finally:
        postgres_server.drop_database(dsn)


@pytest.fixture
def media_store(store_url: str, media_dsn: str) -> Iterator[Store]:
    store = open_store(store_url, media_url=media_dsn, migrate=True, vector_dimension=DIM)
    try:
        yield store
    finally:
        store.close()


def test_attachments_and_extractions(media_store: Store) -> None:
    store = media_store
    assert store.media_enabled
    message = store.create_message(MessageIn("c", "user", "look at this"))
    attachment = store.create_attachment(
        AttachmentIn(message.id, "image/png", "file:///img.png", 2048, metadata={"w": 10})
    )
    assert store.get_attachment(attachment.id) == attachment
    assert store.list_attachments(message_id=message.id).items == (attachment,)
    ocr = store.create_extraction(ExtractionIn(attachment.id, "ocr", content="hello"))
    labels = store.create_extraction(ExtractionIn(attachment.id, "labels", data={"cat": 0.9}))
    assert store.get_extraction(ocr.id) == ocr
    assert store.list_extractions(attachment_id=attachment.id).items == (ocr, labels)
    assert store.list_extractions(kind="labels").items == (labels,)
    with pytest.raises(Conflict):
        store.create_attachment(AttachmentIn(message.id, "image/png", "x", 1, id=attachment.id))
    with pytest.raises(NotFound):
        store.get_attachment(str(uuid.uuid4()))
    with pytest.raises(ValidationError):
        store.create_attachment(AttachmentIn(message.id, "image/png", "x", -1))


def test_links_are_checked_by_the_application(media_store: Store) -> None:
    store = media_store
    ghost = str(uuid.uuid4())
    with pytest.raises(NotFound) as no_message:
        store.create_attachment(AttachmentIn(ghost, "image/png", "file:///x", 1))
    assert (no_message.value.kind, no_message.value.key) == ("message", ghost)
    with pytest.raises(NotFound) as no_attachment:
        store.create_extraction(ExtractionIn(ghost, "ocr"))
    assert no_attachment.value.kind == "attachment"
    assert store.list_attachments().items == ()
    assert store.stats().cross_store_write_failures == 0


def test_cross_store_write_failures_are_counted(
    store_url: str, media_dsn: str, postgres_server: Any
) -> None:
    store = open_store(store_url, media_url=media_dsn, migrate=True, vector_dimension=DIM)
    try:
        message = store.create_message(MessageIn("c", "user", "x"))
        postgres_server.drop_database(media_dsn)  # the media database goes away
        with pytest.raises(StoreUnavailable):
            store.create_attachment(AttachmentIn(message.id, "image/png", "file:///x", 1))
        assert store.stats().cross_store_write_failures == 1
        assert store.get_message(message.id) == message  # the primary store is unaffected
    finally:
        store.close()
