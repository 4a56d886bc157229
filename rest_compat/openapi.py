"""The OpenAPI 3.1 document, generated from the route table and the very pydantic shapes the
services validate with and the handlers render with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from rest_compat.call import PATH_IDS, WORKSPACE_HEADER
from rest_compat.endpoint import Endpoint
from rest_compat.event_stream import LAST_EVENT_ID
from rest_compat.event_stream import MEDIA_TYPE as EVENT_STREAM
from rest_compat.schemas import ErrorEnvelope

REF = "#/components/schemas/{model}"
DOCUMENT_PATH = "/openapi.json"
ERROR_DESCRIPTIONS = {
    400: "Malformed request: invalid JSON, a body that is not an object, unknown or read-only "
    "fields, an unknown query parameter, or an X-Workspace-ID header that differs from the "
    "path's workspace",
    401: "Missing, invalid, expired or revoked bearer token",
    403: "The token is not valid for this workspace, or its role is too low",
    404: "No such object in this workspace (an object of another workspace, or a malformed "
    "id, looks absent)",
    409: "Conflict: the object is in use, or a run of the sync is already active",
    413: "The body is larger than the server accepts",
    422: "Well-formed request with invalid values; `details` name each offending field",
}
SUCCESS_DESCRIPTIONS = {200: "OK", 201: "Created"}
WORKSPACE_HEADER_PARAMETER = {
    "name": WORKSPACE_HEADER,
    "in": "header",
    "required": False,
    "description": "When sent, must equal the workspace id of the path (else 400).",
    "schema": {"type": "string", "format": "uuid"},
}
Mode = Literal["validation", "serialization"]


def build_document(endpoints: Sequence[Endpoint], *, version: str) -> dict[str, Any]:
    schemas, refs = _component_schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {
        DOCUMENT_PATH: {
            "get": {
                "operationId": "get_openapi_document",
                "summary": "This OpenAPI document",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
    }
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Signalsmith REST API",
            "version": version,
            "description": "The audience-syncs contract and the resources it implies. Every "
            "call carries `Authorization: Bearer <token>`; `X-Workspace-ID`, when sent, must "
            "equal the workspace id of the path. Roles: viewers read, editors write, admins "
            "also manage tokens and read the audit log. Paths outside `/workspaces/{id}` (the "
            "destination-type catalogue) are the same for every workspace: any valid token "
            "reads them.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(endpoint: Endpoint, refs: dict[tuple[type[BaseModel], str], str]) -> dict[str, Any]:
    item = {"$ref": refs[(endpoint.response, "serialization")]}
    success = {"type": "array", "items": item} if endpoint.many else item
    responses: dict[str, Any] = {
        str(endpoint.status): {
            "description": SUCCESS_DESCRIPTIONS[endpoint.status],
            "content": {"application/json": {"schema": success}},
        }
    }
    if endpoint.event_stream:
        responses[str(endpoint.status)]["content"][EVENT_STREAM] = {
            "schema": {"type": "string", "description": "Server-Sent Events"}
        }
    error = {"$ref": refs[(ErrorEnvelope, "serialization")]}
    for status in endpoint.error_statuses:
        responses[str(status)] = {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": error}},
        }
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": [
            *(_path_parameter(name) for name in endpoint.path_params),
            *(
                {
                    "name": param.name,
                    "in": "query",
                    "required": False,
                    "description": param.description,
                    "schema": param.json_schema(),
                }
                for param in endpoint.query
            ),
            *(
                [
                    {
                        "name": LAST_EVENT_ID,
                        "in": "header",
                        "required": False,
                        "description": "With text/event-stream: resume after this sequence "
                        "number (what a reconnecting EventSource sends).",
                        "schema": {"type": "string"},
                    }
                ]
                if endpoint.event_stream
                else []
            ),
            *([WORKSPACE_HEADER_PARAMETER] if endpoint.scoped else []),
        ],
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": endpoint.body_required,
            "content": {
                "application/json": {"schema": {"$ref": refs[(endpoint.body, "validation")]}}
            },
        }
    return operation


def _path_parameter(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {PATH_IDS[name]}'s id",
        "schema": {"type": "string", "format": "uuid"},
    }


def _component_schemas(
    endpoints: Sequence[Endpoint],
) -> tuple[dict[str, Any], dict[tuple[type[BaseModel], str], str]]:
    """JSON Schemas of request shapes (as validated) and responses (as rendered), by name."""
    inputs = _unique(endpoint.body for endpoint in endpoints if endpoint.body is not None)
    outputs = _unique([*(endpoint.response for endpoint in endpoints), ErrorEnvelope])
    refs: dict[tuple[type[BaseModel], str], str] = {}
    schemas: dict[str, Any] = {}
    passes: tuple[tuple[list[type[BaseModel]], Mode], ...] = (
        (inputs, "validation"),
        (outputs, "serialization"),
    )
    for models, mode in passes:
        mapping, top = models_json_schema([(m, mode) for m in models], ref_template=REF)
        refs.update({(model, mode): mapping[(model, mode)]["$ref"] for model in models})
        for name, schema in top.get("$defs", {}).items():
            if mode == "serialization":
                _close(schema)
            if schemas.setdefault(name, schema) != schema:
                raise ValueError(f"two different schemas are both named {name}")
    for endpoint in endpoints:
        if endpoint.body is not None and endpoint.nullable is not None:
            name = refs[(endpoint.body, "validation")].rsplit("/", 1)[1]
            _only_nullable(schemas[name], endpoint.nullable)
    return schemas, refs


def _close(schema: dict[str, Any]) -> None:
    """A response object has exactly its shape's fields, every one of them always present."""
    if "properties" in schema:
        schema.setdefault("additionalProperties", False)
        schema["required"] = list(schema["properties"])


def _only_nullable(schema: dict[str, Any], nullable: tuple[str, ...]) -> None:
    """In an update body an omitted field is unchanged; null is accepted only for `nullable`."""
    for name, prop in schema.get("properties", {}).items():
        branches = prop.get("anyOf")
        if name in nullable or branches is None:
            continue
        kept = [branch for branch in branches if branch != {"type": "null"}]
        del prop["anyOf"]
        if prop.get("default", ...) is None:
            del prop["default"]
        if len(kept) == 1:
            prop.update(kept[0])
        else:
            prop["anyOf"] = kept


def _unique(models: Iterable[type[BaseModel]]) -> list[type[BaseModel]]:
    return list(dict.fromkeys(models))
