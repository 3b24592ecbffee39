"""`/v1/agent-messages`: create, get, list by conversation/agent/time."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.responses import JsonBytes
from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import (
    AgentMessageCreate,
    AgentMessageOut,
    AgentMessageQuery,
    PageOut,
)
from liteshift.store.models import AgentMessageIn


async def create_agent_message(call: Call) -> Any:
    message = AgentMessageIn(**with_id(call.body))
    return await call.run(call.store.create_agent_message, message)


async def get_agent_message(call: Call) -> Any:
    return JsonBytes(await call.run(call.store.get_agent_message_json, call.params["id"]))


async def list_agent_messages(call: Call) -> Any:
    return await call.run(call.store.list_agent_messages, **call.query.model_dump())


OPERATIONS = [
    Operation(
        "POST",
        "/v1/agent-messages",
        create_agent_message,
        "Create an agent message",
        "agent-messages",
        body=AgentMessageCreate,
        response=AgentMessageOut,
        status=201,
        errors=(400, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/agent-messages/{id}",
        get_agent_message,
        "Get an agent message",
        "agent-messages",
        response=AgentMessageOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/agent-messages",
        list_agent_messages,
        "List agent messages",
        "agent-messages",
        query=AgentMessageQuery,
        response=PageOut[AgentMessageOut],
        errors=(422,),
    ),
]
