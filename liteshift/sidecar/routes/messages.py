"""`/v1/messages`: create, get, list by conversation and time."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.responses import JsonBytes
from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import MessageCreate, MessageOut, MessageQuery, PageOut
from liteshift.store.models import MessageIn


async def create_message(call: Call) -> Any:
    return await call.run(call.store.create_message, MessageIn(**with_id(call.body)))


async def get_message(call: Call) -> Any:
    return JsonBytes(await call.run(call.store.get_message_json, call.params["id"]))


async def list_messages(call: Call) -> Any:
    return await call.run(call.store.list_messages, **call.query.model_dump())


OPERATIONS = [
    Operation(
        "POST",
        "/v1/messages",
        create_message,
        "Create a message",
        "messages",
        body=MessageCreate,
        response=MessageOut,
        status=201,
        errors=(400, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/messages/{id}",
        get_message,
        "Get a message",
        "messages",
        response=MessageOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/messages",
        list_messages,
        "List messages (oldest first)",
        "messages",
        query=MessageQuery,
        response=PageOut[MessageOut],
        errors=(422,),
    ),
]
