"""Audience syncs through GraphQL mutations and queries, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import httpx

from app.runtime import Runtime
from tests.factories import World, create_sync, create_world, table_counts
from tests.graphql.client import (
    SYNC_FIELDS,
    data,
    error_codes,
    error_fields,
    gql,
    only_error,
    sync_input,
)

CREATE = f"""
mutation Create($ws: ID!, $input: AudienceSyncCreateInput!) {{
  createAudienceSync(workspaceId: $ws, input: $input) {{ {SYNC_FIELDS} }}
}}"""
UPDATE = f"""
mutation Update($id: ID!, $input: AudienceSyncUpdateInput!) {{
  updateAudienceSync(id: $id, input: $input) {{ {SYNC_FIELDS} }}
}}"""
GET = f"""
query Get($id: ID!) {{
  audienceSync(id: $id) {{ {SYNC_FIELDS} audience {{ id name }} destination {{ id name }} }}
}}"""
DELETE = "mutation Delete($id: ID!) { deleteAudienceSync(id: $id) }"


async def test_create_read_update_delete(client: httpx.AsyncClient, world: World) -> None:
    created = data(
        await gql(
            client,
            CREATE,
            {"ws": str(world.workspace_id), "input": sync_input(world)},
            token=world.editor_token,
        )
    )["createAudienceSync"]
    assert created["name"] == "High-Value Customers to Google Ads"
    assert created["workspaceId"] == str(world.workspace_id)
    assert created["fieldMapping"] == [{"sourceColumn": "email", "destinationField": "hashedEmail"}]
    assert created["syncMode"] == "mirror" and created["status"] == "active"
    assert created["config"] == {} and created["statusError"] == "" and created["description"] == ""
    assert created["createdAt"].endswith("Z") and created["lastRunId"] is None
    uuid.UUID(created["id"])

    fetched = data(await gql(client, GET, {"id": created["id"]}, token=world.viewer_token))
    sync = fetched["audienceSync"]
    assert {k: v for k, v in sync.items() if k not in ("audience", "destination")} == created
    assert sync["audience"] == {"id": str(world.audience_id), "name": "high value"}
    assert sync["destination"] == {"id": str(world.destination_id), "name": "hook"}

    updated = data(
        await gql(
            client,
            UPDATE,
            {"id": created["id"], "input": {"name": "renamed", "config": {"batch_size": 500}}},
            token=world.editor_token,
        )
    )["updateAudienceSync"]
    assert updated["name"] == "renamed" and updated["config"] == {"batch_size": 500}
    assert updated["schedule"] == "0 */4 * * *"  # not given, not changed
    assert updated["updatedAt"] > created["updatedAt"]

    cleared = data(
        await gql(
            client,
            UPDATE,
            {"id": created["id"], "input": {"schedule": None}},
            token=world.admin_token,
        )
    )["updateAudienceSync"]
    assert cleared["schedule"] is None and cleared["name"] == "renamed"

    deleted = data(await gql(client, DELETE, {"id": created["id"]}, token=world.editor_token))
    assert deleted == {"deleteAudienceSync": created["id"]}
    gone = await gql(client, GET, {"id": created["id"]}, token=world.admin_token)
    assert gone["data"] == {"audienceSync": None}
    assert error_codes(gone) == ["NOT_FOUND"]


async def test_invalid_schedule_is_bad_user_input_naming_the_field(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {"ws": str(world.workspace_id), "input": sync_input(world, schedule="every tuesday")},
        token=world.admin_token,
    )
    assert body["data"] == {"createAudienceSync": None}
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["schedule"]
    assert await table_counts(runtime) == before


async def test_audience_of_another_workspace_is_bad_user_input(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {
            "ws": str(world.workspace_id),
            "input": sync_input(world, audienceId=str(other.audience_id)),
        },
        token=world.admin_token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["audience_id"]
    assert await table_counts(runtime) == before


async def test_unknown_sync_mode_is_rejected_before_any_write(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {"ws": str(world.workspace_id), "input": sync_input(world, syncMode="sometimes")},
        token=world.admin_token,
    )
    error = only_error(body)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "syncMode" in error["message"]
    assert await table_counts(runtime) == before


async def test_viewer_cannot_create_and_nothing_is_written(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {"ws": str(world.workspace_id), "input": sync_input(world)},
        token=world.viewer_token,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert await table_counts(runtime) == before


async def test_creating_in_another_workspace_is_forbidden(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    before = await table_counts(runtime)
    body = await gql(
        client,
        CREATE,
        {"ws": str(other.workspace_id), "input": sync_input(other)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert await table_counts(runtime) == before


async def test_sync_of_another_workspace_is_not_found_for_every_operation(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    other = await create_world(runtime)
    foreign = str((await create_sync(runtime, other)).id)
    before = await table_counts(runtime)
    for document, variables in [
        (GET, {"id": foreign}),
        (UPDATE, {"id": foreign, "input": {"name": "mine now"}}),
        (DELETE, {"id": foreign}),
        ("mutation($id: ID!) { triggerAudienceSync(id: $id) { id } }", {"id": foreign}),
        ("query($id: ID!) { syncRuns(syncId: $id) { totalCount } }", {"id": foreign}),
    ]:
        body = await gql(client, document, variables, token=world.admin_token)
        assert error_codes(body) == ["NOT_FOUND"], document
        assert foreign in body["errors"][0]["message"]
    assert await table_counts(runtime) == before


async def test_malformed_id_is_bad_user_input_naming_the_argument(
    client: httpx.AsyncClient, world: World
) -> None:
    body = await gql(client, GET, {"id": "not-a-uuid"}, token=world.admin_token)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["id"]


async def test_failed_mutation_leaves_nothing_for_the_next_one(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    """The update fails after changing the loaded sync in memory; the next mutation of the
    same document commits, and must not carry the failed change with it."""
    sync = await create_sync(runtime, world)
    other = await create_world(runtime)
    body = await gql(
        client,
        """
        mutation($id: ID!, $ws: ID!, $foreign: ID!, $config: JSON!) {
          bad: updateAudienceSync(id: $id, input: {name: "hijacked", audienceId: $foreign}) {
            id
          }
          good: createSource(workspaceId: $ws, input: {
            name: "second", type: sqlite, config: $config
          }) { name }
        }""",
        {
            "id": str(sync.id),
            "ws": str(world.workspace_id),
            "foreign": str(other.audience_id),
            "config": {"url": world.source_url},
        },
        token=world.admin_token,
    )
    assert body["data"] == {"bad": None, "good": {"name": "second"}}
    assert error_fields(body) == ["audience_id"]
    after = data(await gql(client, GET, {"id": str(sync.id)}, token=world.admin_token))
    assert after["audienceSync"]["name"] == sync.name
    assert after["audienceSync"]["audienceId"] == str(world.audience_id)
