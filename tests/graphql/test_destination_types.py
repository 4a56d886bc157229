"""GraphQL `destinationTypes` (the same catalogue as REST, field for field) and
`checkDestination`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.asgi import create_app
from app.destinations.registry import SPECS
from app.runtime import Runtime
from app.services import destinations
from app.settings import Settings
from models.enums import DestinationType
from tests.factories import World, as_token, create_world
from tests.graphql.client import data, error_codes, error_fields, gql, only_error

CATALOGUE = """{ destinationTypes {
  type title description available maxBatchSize defaultBatchSize
  rateLimit { requests perSeconds } customFields needsIdentifier onExit
  configFields { name type required secret description default }
  fields { name description identifier normalizer hashed required }
} }"""
CHECK = "mutation($id: ID!) { checkDestination(id: $id) { status } }"
SECRET = "gql-hook-secret-canary"


def snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"([A-Z])", r"_\1", k).lower(): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(item) for item in value]
    return value


async def test_lists_every_type_with_webhooks_secrets_flagged(
    client: httpx.AsyncClient, world: World
) -> None:
    types = data(await gql(client, CATALOGUE, token=world.viewer_token))["destinationTypes"]
    assert [t["type"] for t in types] == [kind.value for kind in DestinationType]
    webhook = types[0]
    assert webhook["available"] is True and webhook["onExit"] == ["remove"]
    secrets = {f["name"]: f["secret"] for f in webhook["configFields"]}
    assert secrets == {"url": False, "headers": True, "secret": True}
    assert next(f for f in webhook["configFields"] if f["name"] == "headers")["default"] == {}


async def test_rest_and_graphql_give_the_same_catalogue(
    client: httpx.AsyncClient, world: World
) -> None:
    rest = await client.get(
        "/api/v1/destination-types", headers={"Authorization": f"Bearer {world.editor_token}"}
    )
    assert rest.status_code == 200, rest.text
    graphql = data(await gql(client, CATALOGUE, token=world.editor_token))["destinationTypes"]
    assert snake(graphql) == rest.json()


async def test_needs_a_token_but_no_workspace(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    assert error_codes(await gql(client, CATALOGUE)) == ["UNAUTHENTICATED"]
    assert error_codes(await gql(client, CATALOGUE, token="ssk_nope")) == ["UNAUTHENTICATED"]
    other = await create_world(runtime)
    theirs = data(await gql(client, CATALOGUE, token=other.viewer_token))
    assert theirs == data(await gql(client, CATALOGUE, token=world.viewer_token))


@pytest.fixture
async def local_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app of a deployment that allows private destinations."""
    app = create_app(settings.model_copy(update={"allow_private_destinations": True}))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client
    finally:
        await app.state.runtime.close()


async def local_webhook(local_client: httpx.AsyncClient, world: World) -> str:
    made = await gql(
        local_client,
        "mutation($w: ID!, $input: DestinationCreateInput!) "
        "{ createDestination(workspaceId: $w, input: $input) { id } }",
        {
            "w": str(world.workspace_id),
            "input": {
                "name": "local",
                "type": "webhook",
                "config": {"url": "http://127.0.0.1:9/hook", "secret": SECRET},
            },
        },
        token=world.editor_token,
    )
    destination_id: str = data(made)["createDestination"]["id"]
    return destination_id


async def test_check_destination_follows_the_deployments_private_address_rule(
    client: httpx.AsyncClient, local_client: httpx.AsyncClient, world: World
) -> None:
    destination_id = await local_webhook(local_client, world)
    allowed = await gql(local_client, CHECK, {"id": destination_id}, token=world.viewer_token)
    assert data(allowed) == {"checkDestination": {"status": "ok"}}
    refused = await gql(client, CHECK, {"id": destination_id}, token=world.viewer_token)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert error_fields(refused) == ["config"]
    assert "non-public address" in only_error(refused)["message"]
    assert refused["data"] == {"checkDestination": None}
    assert SECRET not in str(refused)


async def test_check_destination_of_a_type_without_a_connector(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    kind = next(kind for kind, spec in reversed(SPECS.items()) if not spec.available)
    async with as_token(runtime, world.editor_token) as ctx:
        later = await destinations.create_destination(
            ctx, workspace_id=world.workspace_id, data={"name": "later", "type": kind, "config": {}}
        )
    refused = await gql(client, CHECK, {"id": str(later.id)}, token=world.viewer_token)
    assert error_codes(refused) == ["BAD_USER_INPUT"] and error_fields(refused) == ["config"]
    assert (
        only_error(refused)["message"] == f"config: the {kind.value} connector is not available yet"
    )


async def test_check_destination_of_another_workspace_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    theirs = await gql(client, CHECK, {"id": str(other.destination_id)}, token=world.viewer_token)
    assert error_codes(theirs) == ["NOT_FOUND"]
    assert error_codes(await gql(client, CHECK, {"id": str(world.destination_id)})) == [
        "UNAUTHENTICATED"
    ]
