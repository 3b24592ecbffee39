"""`/v1/cursors`: ETL worker positions, moved only by compare-and-set."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.routing import Call, Operation
from liteshift.sidecar.schemas import CursorAdvance, CursorOut, PageOut, PageQuery


async def get_cursor(call: Call) -> Any:
    return await call.run(call.store.get_cursor, call.params["name"])


async def list_cursors(call: Call) -> Any:
    return await call.run(call.store.list_cursors, **call.query.model_dump())


async def advance_cursor(call: Call) -> Any:
    advance: CursorAdvance = call.body
    return await call.run(
        call.store.advance_cursor, call.params["name"], advance.expected, advance.position
    )


OPERATIONS = [
    Operation(
        "GET",
        "/v1/cursors/{name}",
        get_cursor,
        "Get an ETL cursor",
        "cursors",
        response=CursorOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/cursors",
        list_cursors,
        "List ETL cursors (name order)",
        "cursors",
        query=PageQuery,
        response=PageOut[CursorOut],
        errors=(422,),
    ),
    Operation(
        "PUT",
        "/v1/cursors/{name}",
        advance_cursor,
        "Compare-and-set a cursor from `expected` (null: create) to `position`; "
        "409 cursor_conflict when it is elsewhere",
        "cursors",
        body=CursorAdvance,
        response=CursorOut,
        errors=(400, 409, 422),
    ),
]
