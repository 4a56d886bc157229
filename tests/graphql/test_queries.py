"""Reads: the viewer, workspaces, and objects by id (scoped to the token's workspace)."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import World, create_sync, create_world
from tests.graphql.client import data, error_codes, error_fields, gql


async def test_viewer_is_the_tokens_account_workspace_and_role(
    client: httpx.AsyncClient, world: World
) -> None:
    for role in ("admin", "editor", "viewer"):
        body = data(
            await gql(
                client,
                "{ viewer { role account { id email } workspace { id name slug createdAt } } }",
                token=getattr(world, f"{role}_token"),
            )
        )["viewer"]
        assert body["role"] == role
        assert body["workspace"]["id"] == str(world.workspace_id)
        assert body["workspace"]["createdAt"].endswith("Z")
    admin = data(await gql(client, "{ viewer { account { id } } }", token=world.admin_token))
    assert admin["viewer"]["account"]["id"] == str(world.account_id)


async def test_workspace_by_id_only_for_its_members(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    query = "query($id: ID!) { workspace(id: $id) { id slug } }"
    own = data(await gql(client, query, {"id": str(world.workspace_id)}, token=world.viewer_token))
    assert own["workspace"]["id"] == str(world.workspace_id)
    other = await create_world(runtime)
    body = await gql(client, query, {"id": str(other.workspace_id)}, token=world.viewer_token)
    assert error_codes(body) == ["FORBIDDEN"]


async def test_lists_of_another_workspace_are_forbidden(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    for connection in ("audienceSyncs", "audiences", "destinations", "sources", "models"):
        body = await gql(
            client,
            f"query($ws: ID!) {{ {connection}(workspaceId: $ws) {{ totalCount }} }}",
            {"ws": str(other.workspace_id)},
            token=world.admin_token,
        )
        assert error_codes(body) == ["FORBIDDEN"], connection
    own = data(
        await gql(
            client,
            "query($ws: ID!) { sources(workspaceId: $ws) { totalCount } }",
            {"ws": str(world.workspace_id)},
            token=world.viewer_token,
        )
    )
    assert own == {"sources": {"totalCount": 1}}


@pytest.mark.parametrize(
    ("field", "attribute"),
    [
        ("audience", "audience_id"),
        ("destination", "destination_id"),
        ("source", "source_id"),
        ("model", "model_id"),
        ("audienceSync", "sync"),
    ],
)
async def test_object_of_another_workspace_is_not_found(
    client: httpx.AsyncClient, runtime: Runtime, world: World, field: str, attribute: str
) -> None:
    other = await create_world(runtime)
    if attribute == "sync":
        own_id, foreign_id = (
            (await create_sync(runtime, world)).id,
            (await create_sync(runtime, other)).id,
        )
    else:
        own_id, foreign_id = getattr(world, attribute), getattr(other, attribute)
    query = f"query($id: ID!) {{ {field}(id: $id) {{ id name }} }}"
    own = data(await gql(client, query, {"id": str(own_id)}, token=world.viewer_token))
    assert own[field]["id"] == str(own_id)
    body = await gql(client, query, {"id": str(foreign_id)}, token=world.viewer_token)
    assert body["data"] == {field: None}
    assert error_codes(body) == ["NOT_FOUND"]
    assert error_fields(body) == ["id"]
