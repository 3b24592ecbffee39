"""`/v1/attachments`, `/v1/extractions`: mounted only when media is enabled."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import (
    AttachmentCreate,
    AttachmentOut,
    AttachmentQuery,
    ExtractionCreate,
    ExtractionOut,
    ExtractionQuery,
    PageOut,
)
from liteshift.store.models import AttachmentIn, ExtractionIn


async def create_attachment(call: Call) -> Any:
    return await call.run(call.store.create_attachment, AttachmentIn(**with_id(call.body)))


async def get_attachment(call: Call) -> Any:
    return await call.run(call.store.get_attachment, call.params["id"])


async def list_attachments(call: Call) -> Any:
    return await call.run(call.store.list_attachments, **call.query.model_dump())


async def create_extraction(call: Call) -> Any:
    return await call.run(call.store.create_extraction, ExtractionIn(**with_id(call.body)))


async def get_extraction(call: Call) -> Any:
    return await call.run(call.store.get_extraction, call.params["id"])


async def list_extractions(call: Call) -> Any:
    return await call.run(call.store.list_extractions, **call.query.model_dump())


OPERATIONS = [
    Operation(
        "POST",
        "/v1/attachments",
        create_attachment,
        "Create an attachment of an existing message (404 if the message is unknown)",
        "media",
        body=AttachmentCreate,
        response=AttachmentOut,
        status=201,
        errors=(400, 404, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/attachments/{id}",
        get_attachment,
        "Get an attachment",
        "media",
        response=AttachmentOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/attachments",
        list_attachments,
        "List attachments",
        "media",
        query=AttachmentQuery,
        response=PageOut[AttachmentOut],
        errors=(422,),
    ),
    Operation(
        "POST",
        "/v1/extractions",
        create_extraction,
        "Create an extraction of an existing attachment",
        "media",
        body=ExtractionCreate,
        response=ExtractionOut,
        status=201,
        errors=(400, 404, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/extractions/{id}",
        get_extraction,
        "Get an extraction",
        "media",
        response=ExtractionOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/extractions",
        list_extractions,
        "List extractions",
        "media",
        query=ExtractionQuery,
        response=PageOut[ExtractionOut],
        errors=(422,),
    ),
]
