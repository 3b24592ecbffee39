"""`/v1/embeddings`: create, get, list, delete, and kNN `search`."""

from __future__ import annotations

from typing import Any

from liteshift.sidecar.routing import Call, Operation, with_id
from liteshift.sidecar.schemas import (
    EmbeddingCreate,
    EmbeddingOut,
    EmbeddingQuery,
    EmbeddingSearch,
    PageOut,
    SearchOut,
)
from liteshift.store.models import EmbeddingIn


async def create_embedding(call: Call) -> Any:
    fields = with_id(call.body)
    fields["vector"] = tuple(fields["vector"])
    return await call.run(call.store.create_embedding, EmbeddingIn(**fields))


async def get_embedding(call: Call) -> Any:
    return await call.run(call.store.get_embedding, call.params["id"])


async def list_embeddings(call: Call) -> Any:
    return await call.run(call.store.list_embeddings, **call.query.model_dump())


async def delete_embedding(call: Call) -> Any:
    await call.run(call.store.delete_embedding, call.params["id"])


async def search_embeddings(call: Call) -> Any:
    search: EmbeddingSearch = call.body
    hits = await call.run(call.store.search_embeddings, tuple(search.vector), search.k)
    return {"items": hits}


OPERATIONS = [
    Operation(
        "POST",
        "/v1/embeddings",
        create_embedding,
        "Create (and index) an embedding",
        "embeddings",
        body=EmbeddingCreate,
        response=EmbeddingOut,
        status=201,
        errors=(400, 409, 422),
    ),
    Operation(
        "POST",
        "/v1/embeddings/search",
        search_embeddings,
        "The k nearest embeddings by L2 distance, nearest first",
        "embeddings",
        body=EmbeddingSearch,
        response=SearchOut,
        errors=(400, 422),
    ),
    Operation(
        "GET",
        "/v1/embeddings/{id}",
        get_embedding,
        "Get an embedding",
        "embeddings",
        response=EmbeddingOut,
        errors=(404, 422),
    ),
    Operation(
        "DELETE",
        "/v1/embeddings/{id}",
        delete_embedding,
        "Delete an embedding and its index entry",
        "embeddings",
        status=204,
        errors=(404, 422),
    ),
    Operation(
        "GET",
        "/v1/embeddings",
        list_embeddings,
        "List embeddings",
        "embeddings",
        query=EmbeddingQuery,
        response=PageOut[EmbeddingOut],
        errors=(422,),
    ),
]
