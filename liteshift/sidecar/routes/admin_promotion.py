"""`/admin/promotion`: start, watch and abort the online promotion of this sidecar's SQLite
store to Postgres (the operator drives these; docs/promotion.md, "In the sidecar").

The run itself is `liteshift.sidecar.promotion.Promoter`, in a background thread: POST
answers at once (202) and GET reports the state machine's position and progress.
"""

from __future__ import annotations

import asyncio
from typing import Any

from liteshift.sidecar.errors import RequestError
from liteshift.sidecar.promotion import BadPromotionTarget, Promoter, PromotionRefused
from liteshift.sidecar.responses import json_response
from liteshift.sidecar.routing import Call, Operation
from liteshift.sidecar.schemas import PromotionOut, PromotionStart

#: How long `POST /admin/promotion/abort` waits for the run to roll back before answering with
#: the state as it is (the caller polls GET).
ABORT_WAIT_SECONDS = 60.0


def _promoter(call: Call) -> Promoter:
    promoter = call.sidecar.promoter
    if promoter is None:
        raise RequestError(404, "not_found", "this sidecar has no promotion support")
    return promoter


def _refused(exc: BadPromotionTarget | PromotionRefused) -> RequestError:
    return RequestError(exc.status, exc.code, str(exc))


async def start_promotion(call: Call) -> Any:
    """Start (or join) the promotion to `target_url`: 202 running, 200 already promoted."""
    body: PromotionStart = call.body
    try:
        running, document = _promoter(call).start(body.target_url)
    except (BadPromotionTarget, PromotionRefused) as exc:
        raise _refused(exc) from None
    return json_response(document, 202 if running else 200)


async def promotion_status(call: Call) -> Any:
    """The promotion's state, progress, write pause and error."""
    return _promoter(call).document()


async def abort_promotion(call: Call) -> Any:
    """Stop a run before CuttingOver and roll back to SQLite (state RolledBack, `aborted`)."""
    promoter = _promoter(call)
    try:
        return await asyncio.to_thread(promoter.abort, ABORT_WAIT_SECONDS)
    except PromotionRefused as exc:
        raise _refused(exc) from None


OPERATIONS = [
    Operation(
        "POST",
        "/admin/promotion",
        start_promotion,
        "Promote this sidecar's SQLite store to Postgres online (202 started, 200 promoted)",
        "admin",
        auth="admin",
        body=PromotionStart,
        response=PromotionOut,
        status=202,
        errors=(200, 400, 409, 422),
        extra={"200": PromotionOut},
    ),
    Operation(
        "GET",
        "/admin/promotion",
        promotion_status,
        "The online promotion's state and progress",
        "admin",
        auth="admin",
        response=PromotionOut,
    ),
    Operation(
        "POST",
        "/admin/promotion/abort",
        abort_promotion,
        "Abort the online promotion before cutover; SQLite stays primary",
        "admin",
        auth="admin",
        response=PromotionOut,
        errors=(409,),
    ),
]
