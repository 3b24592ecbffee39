"""`/v1/events`: append-only (no update, no delete), get, list by type/subject/time."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.responses import JsonBytes
from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import EventCreate, EventOut, EventQuery, PageOut
from liteshift.store.models import EventIn


async def append_event(call: Call) -> Any:
    return await call.run(call.store.append_event, EventIn(**with_id(call.body)))


async def get_event(call: Call) -> Any:
    return JsonBytes(await call.run(call.store.get_event_json, call.params["id"]))


async def list_events(call: Call) -> Any:
    return await call.run(call.store.list_events, **call.query.model_dump())


OPERATIONS = [
    Operation(
        "POST",
        "/v1/events",
        append_event,
        "Append an event",
        "events",
        body=EventCreate,
        response=EventOut,
        status=201,
        errors=(400, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/events/{id}",
        get_event,
        "Get an event",
        "events",
        response=EventOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/events",
        list_events,
        "List events",
        "events",
        query=EventQuery,
        response=PageOut[EventOut],
        errors=(422,),
    ),
]
