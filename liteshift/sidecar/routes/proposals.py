"""`/v1/proposals`: create, get, list; decisions are transitions out of `pending`."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.responses import JsonBytes
from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import (
    PageOut,
    ProposalCreate,
    ProposalDecision,
    ProposalOut,
    ProposalQuery,
)
from liteshift.store.models import ProposalIn


async def create_proposal(call: Call) -> Any:
    return await call.run(call.store.create_proposal, ProposalIn(**with_id(call.body)))


async def get_proposal(call: Call) -> Any:
    return JsonBytes(await call.run(call.store.get_proposal_json, call.params["id"]))


async def list_proposals(call: Call) -> Any:
    return await call.run(call.store.list_proposals, **call.query.model_dump())


async def decide_proposal(call: Call) -> Any:
    decision: ProposalDecision = call.body
    return await call.run(
        call.store.decide_proposal, call.params["id"], decision.status, decision.reason
    )


OPERATIONS = [
    Operation(
        "POST",
        "/v1/proposals",
        create_proposal,
        "Create a pending proposal",
        "proposals",
        body=ProposalCreate,
        response=ProposalOut,
        status=201,
        errors=(400, 409, 422),
    ),
    Operation(
        "GET",
        "/v1/proposals/{id}",
        get_proposal,
        "Get a proposal",
        "proposals",
        response=ProposalOut,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/proposals",
        list_proposals,
        "List proposals",
        "proposals",
        query=ProposalQuery,
        response=PageOut[ProposalOut],
        errors=(422,),
    ),
    Operation(
        "POST",
        "/v1/proposals/{id}/decision",
        decide_proposal,
        "Accept or reject a pending proposal (409 invalid_transition if already decided)",
        "proposals",
        body=ProposalDecision,
        response=ProposalOut,
        errors=(400, 404, 409, 422),
    ),
]
