"""`GET /api/v1/destination-types`: the catalogue of every destination type, outside any
workspace, for any valid token."""

from __future__ import annotations

from typing import Any

import httpx

from app.destinations.registry import SPECS
from app.runtime import Runtime
from models.enums import DestinationType
from tests.factories import World, create_world
from tests.rest.support import assert_error

URL = "/api/v1/destination-types"
TYPE_FIELDS = {
    "type", "title", "description", "available", "max_batch_size", "default_batch_size",
    "rate_limit", "custom_fields", "needs_identifier", "on_exit", "config_fields", "fields",
}  # fmt: skip


async def catalogue(client: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await client.get(URL, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def test_lists_every_destination_type_in_order(
    client: httpx.AsyncClient, world: World
) -> None:
    types = await catalogue(client, world.viewer_token)
    assert [t["type"] for t in types] == [kind.value for kind in DestinationType]
    for item in types:
        assert set(item) == TYPE_FIELDS
        spec = SPECS[DestinationType(item["type"])]
        assert item["available"] is (spec.build is not None)
        assert 1 <= item["default_batch_size"] <= item["max_batch_size"] == spec.max_batch_size
        assert item["on_exit"] and "remove" in item["on_exit"]
        assert [f["name"] for f in item["fields"]] == [f.name for f in spec.fields]
        assert {c["name"] for c in item["config_fields"]} == set(spec.config.model_fields)


async def test_webhook_flags_its_secret_config_fields(
    client: httpx.AsyncClient, world: World
) -> None:
    webhook = next(t for t in await catalogue(client, world.editor_token) if t["type"] == "webhook")
    assert webhook["title"] == "Webhook" and webhook["available"] is True
    assert (webhook["max_batch_size"], webhook["default_batch_size"]) == (10_000, 500)
    assert webhook["custom_fields"] is True and webhook["needs_identifier"] is False
    assert webhook["on_exit"] == ["remove"] and webhook["rate_limit"] is None
    assert webhook["fields"] == []
    by_name = {field["name"]: field for field in webhook["config_fields"]}
    assert by_name["url"] == {
        "name": "url", "type": "string", "required": True, "secret": False,
        "description": "where batches are POSTed", "default": None,
    }  # fmt: skip
    assert by_name["headers"] == {
        "name": "headers", "type": "object", "required": False, "secret": True,
        "description": "extra request headers (e.g. an API key)", "default": {},
    }  # fmt: skip
    assert by_name["secret"]["secret"] is True and by_name["secret"]["required"] is False
    assert [name for name, field in by_name.items() if field["secret"]] == ["headers", "secret"]


async def test_a_type_without_a_connector_is_listed_as_unavailable(
    client: httpx.AsyncClient, world: World
) -> None:
    types = {t["type"]: t for t in await catalogue(client, world.viewer_token)}
    unavailable = [kind.value for kind, spec in SPECS.items() if not spec.available]
    for kind in unavailable:
        assert types[kind]["available"] is False
        assert "base_url" in {field["name"] for field in types[kind]["config_fields"]}
    assert {kind for kind, item in types.items() if item["available"]} == {
        kind.value for kind, spec in SPECS.items() if spec.available
    }


async def test_is_the_same_for_every_workspace_and_role(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    mine = await catalogue(client, world.viewer_token)
    assert await catalogue(client, world.admin_token) == mine
    assert await catalogue(client, other.editor_token) == mine


async def test_needs_a_valid_token_and_nothing_else(
    client: httpx.AsyncClient, world: World
) -> None:
    assert_error(await client.get(URL), 401)
    assert_error(await client.get(URL, headers={"Authorization": "Bearer ssk_nope"}), 401)
    # Outside any workspace, X-Workspace-ID means nothing (even a malformed one).
    headers = {**world.headers("viewer"), "X-Workspace-ID": "not-a-uuid"}
    assert (await client.get(URL, headers=headers)).status_code == 200
    assert_error(await client.get(f"{URL}?limit=5", headers=world.headers()), 400, "limit")
    assert (await client.post(URL, headers=world.headers())).status_code == 405


async def test_the_openapi_document_describes_it(client: httpx.AsyncClient) -> None:
    document = (await client.get("/api/v1/openapi.json")).json()
    operation = document["paths"]["/destination-types"]["get"]
    assert set(operation["responses"]) == {"200", "400", "401"}
    assert operation["parameters"] == []  # no path id, no X-Workspace-ID
    success = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert success["items"] == {"$ref": "#/components/schemas/DestinationTypePublic"}
    schemas = document["components"]["schemas"]
    assert set(schemas["DestinationTypePublic"]["required"]) == TYPE_FIELDS
    config_field = schemas["DestinationConfigFieldPublic"]
    assert {"secret", "type", "default"} <= set(config_field["required"])
