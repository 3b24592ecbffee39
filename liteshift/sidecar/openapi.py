"""`/openapi.json`, generated from the route table and its pydantic models."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic.json_schema import models_json_schema

from liteshift import __version__
from liteshift.sidecar.routing import Operation
from liteshift.sidecar.schemas import ErrorBody

_REF = "#/components/schemas/{model}"
_COMMON_ERRORS = {
    401: "missing, malformed or unknown bearer token",
    403: "a valid token of the other kind (API vs admin)",
    413: "request body over LITESHIFT_MAX_BODY_BYTES",
}
_DESCRIPTIONS = {
    400: "malformed JSON (bad_json)",
    404: "unknown id (not_found)",
    409: "conflict: duplicate id, lost compare-and-set, or invalid transition",
    422: "wrong types, missing or unknown fields, invalid values (validation_error)",
    503: "store unavailable",
}


def _models(operations: list[Operation]) -> list[type[pydantic.BaseModel]]:
    seen: dict[str, type[pydantic.BaseModel]] = {"ErrorBody": ErrorBody}
    for op in operations:
        for model in (op.body, op.response, *op.extra.values()):
            if model is not None:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def build_openapi(operations: list[Operation]) -> dict[str, Any]:
    """An OpenAPI 3.1 document describing exactly `operations`."""
    models = _models(operations)
    refs, defs = models_json_schema([(m, "serialization") for m in models], ref_template=_REF)
    schema_ref = {m: refs[(m, "serialization")] for m in models}
    # Request bodies are validated in "validation" mode; the serialization schemas are the same
    # for these models (no computed fields, no aliases), so one set of components serves both.
    error = {"application/json": {"schema": schema_ref[ErrorBody]}}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in op.path_params
        ]
        if op.query is not None:
            query_schema = op.query.model_json_schema(ref_template=_REF)
            required = set(query_schema.get("required", []))
            for name, prop in query_schema["properties"].items():
                parameters.append(
                    {
                        "name": name,
                        "in": "query",
                        "required": name in required,
                        "schema": {k: v for k, v in prop.items() if k != "description"},
                        "description": prop.get("description", ""),
                    }
                )
        success: dict[str, Any] = {"description": "OK" if op.status != 201 else "Created"}
        if op.status == 204:
            success["description"] = "No Content"
        elif op.response is not None:
            success["content"] = {op.media_type: {"schema": schema_ref[op.response]}}
        else:
            success["content"] = {op.media_type: {"schema": {}}}
        responses: dict[str, Any] = {str(op.status): success}
        statuses = dict(_DESCRIPTIONS)
        if op.auth != "none":
            statuses.update(_COMMON_ERRORS)
        codes = sorted({*op.errors, *(_COMMON_ERRORS if op.auth != "none" else ())})
        if op.body is not None:
            codes = sorted({*codes, 413})
        for code in codes:
            override = op.extra.get(str(code))
            content = {"application/json": {"schema": schema_ref[override]}} if override else error
            responses[str(code)] = {"description": statuses.get(code, "error"), "content": content}
        entry: dict[str, Any] = {
            "operationId": op.operation_id,
            "summary": op.summary,
            "tags": [op.tag],
            "parameters": parameters,
            "responses": responses,
        }
        if op.auth == "api":
            entry["security"] = [{"apiToken": []}]
        elif op.auth == "admin":
            entry["security"] = [{"adminToken": []}]
        elif op.auth == "any":
            entry["security"] = [{"apiToken": []}, {"adminToken": []}]
        else:
            entry["security"] = []
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_ref[op.body]}},
            }
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "liteshift sidecar", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer", "description": "/v1/*"},
                "adminToken": {"type": "http", "scheme": "bearer", "description": "/admin/*"},
            },
        },
    }
