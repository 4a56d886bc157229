"""The OpenAPI document: generated from the route table and the shapes, and saying what the
server does (statuses, closed request bodies, exact response objects)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from rest_compat.endpoint import Endpoint
from rest_compat.routes import ENDPOINTS
from tests.rest.support import RUN_FIELDS, SYNC_FIELDS


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")  # no token needed
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def test_header(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {"type": "http", "scheme": "bearer"}


def test_the_eight_spec_endpoints_are_documented(document: dict[str, Any]) -> None:
    syncs, sync = "/workspaces/{id}/audience-syncs", "/workspaces/{id}/audience-syncs/{syncId}"
    expected = {
        (syncs, "get", "200"),
        (syncs, "post", "201"),
        (sync, "get", "200"),
        (sync, "put", "200"),
        (sync, "delete", "200"),
        (f"{sync}/trigger", "post", "201"),
        (f"{sync}/runs", "get", "200"),
        (f"{sync}/runs/{{runId}}", "get", "200"),
    }
    for path, method, status in expected:
        assert status in document["paths"][path][method]["responses"], (path, method)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_every_endpoint_documents_what_it_answers(
    document: dict[str, Any], endpoint: Endpoint
) -> None:
    operation = document["paths"][endpoint.path][endpoint.method.lower()]
    statuses = {int(status) for status in operation["responses"]}
    assert statuses == {endpoint.status, *endpoint.error_statuses}
    parameters = {parameter["name"] for parameter in operation["parameters"]}
    if endpoint.scoped:
        assert {400, 401, 403, 404} <= statuses
        assert {"id", "X-Workspace-ID"} <= parameters
    else:  # outside any workspace: only the token (and unknown query parameters) can fail
        assert {400, 401} <= statuses and not {403, 404} & statuses
        assert not {"id", "X-Workspace-ID"} & parameters
    for status, response in operation["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        if int(status) >= 400:
            assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
        elif endpoint.many:
            assert schema["type"] == "array"
    for parameter in operation["parameters"]:
        if parameter["in"] == "path":
            assert parameter["required"] and parameter["schema"]["format"] == "uuid"
    if endpoint.body is not None:
        assert {413, 422} <= statuses
        body = resolve(document, operation["requestBody"]["content"]["application/json"]["schema"])
        if body.get("type") == "array":  # a list body (split groups): its items are closed
            body = resolve(document, body["items"])
        assert body["additionalProperties"] is False


def test_request_bodies_are_closed_all_the_way_down(document: dict[str, Any]) -> None:
    bodies = {
        op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for item in document["paths"].values()
        for op in item.values()
        if "requestBody" in op
    }
    seen: set[str] = set()
    pending = list(bodies)
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        schema = resolve(document, {"$ref": ref})
        if "properties" in schema:
            assert schema["additionalProperties"] is False, ref
        pending.extend(_refs(schema))
    assert len(seen) > len(bodies)  # nested shapes (field mapping, sync config …) were checked


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if "$ref" in value else []
        return own + [ref for child in value.values() for ref in _refs(child)]
    if isinstance(value, list):
        return [ref for child in value for ref in _refs(child)]
    return []


def test_update_bodies_say_which_fields_may_be_null(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    update = schemas["AudienceSyncUpdate"]["properties"]
    assert "anyOf" not in update["name"] and update["name"]["type"] == "string"
    assert {"type": "null"} in update["schedule"]["anyOf"]
    assert all("anyOf" not in prop for prop in schemas["SourceUpdate"]["properties"].values())
    create = schemas["AudienceSyncCreate"]
    assert set(create["required"]) == {
        "name", "audience_id", "destination_id", "field_mapping", "sync_mode",
    }  # fmt: skip
    assert create["properties"]["sync_mode"] == {"$ref": "#/components/schemas/SyncMode"}
    assert schemas["SyncMode"]["enum"] == ["add", "remove", "mirror", "upsert"]


def test_response_objects_are_exact(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name, fields in (("AudienceSyncPublic", SYNC_FIELDS), ("SyncRunPublic", RUN_FIELDS)):
        assert set(schemas[name]["properties"]) == fields
        assert set(schemas[name]["required"]) == fields
        assert schemas[name]["additionalProperties"] is False
    assert "token" in schemas["TokenCreated"]["properties"]
    assert "token" not in schemas["TokenPublic"]["properties"]
    assert "secret_fields" in schemas["DestinationPublic"]["properties"]
    envelope = resolve(document, schemas["ErrorEnvelope"]["properties"]["error"])
    assert set(envelope["required"]) == {"code", "message", "details"}
