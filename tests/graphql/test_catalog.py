"""Sources, parent models, audiences and destinations through GraphQL."""

from __future__ import annotations

import httpx
import pytest

from app.runtime import Runtime
from tests.factories import (
    CUSTOMER_COLUMNS,
    HIGH_VALUE_IDS,
    World,
    create_sync,
    create_world,
    table_counts,
)
from tests.graphql.client import data, error_codes, error_fields, gql
from tests.services import postgres_url_with_password

SOURCE = "id workspaceId name type config createdBy createdAt updatedAt"
MODEL = "id sourceId name query table primaryKey columns { name type } source { id name }"
AUDIENCE = "id modelId name description filter model { id name source { name } }"
DESTINATION = "id name type config secretFields createdAt"


async def test_source_lifecycle_hides_the_password(client: httpx.AsyncClient, world: World) -> None:
    ws, token = str(world.workspace_id), world.editor_token
    created = data(
        await gql(
            client,
            f"""mutation($ws: ID!, $config: JSON!) {{ createSource(workspaceId: $ws, input: {{
              name: "dwh", type: postgres, config: $config
            }}) {{ {SOURCE} }} }}""",
            {"ws": ws, "config": {"url": postgres_url_with_password("hunter2")}},
            token=token,
        )
    )["createSource"]
    assert created["type"] == "postgres" and created["workspaceId"] == ws
    assert created["config"] == {"url": postgres_url_with_password("***")}
    editor = data(await gql(client, "{ viewer { account { id } } }", token=token))
    assert created["createdBy"] == editor["viewer"]["account"]["id"]

    updated = data(
        await gql(
            client,
            f"""mutation($id: ID!) {{
              updateSource(id: $id, input: {{name: "warehouse 2"}}) {{ {SOURCE} }}
            }}""",
            {"id": created["id"]},
            token=token,
        )
    )["updateSource"]
    assert updated["name"] == "warehouse 2" and updated["config"] == created["config"]

    fetched = await gql(
        client,
        f"query($id: ID!) {{ source(id: $id) {{ {SOURCE} }} }}",
        {"id": created["id"]},
        token=world.viewer_token,
    )
    assert "hunter2" not in str(fetched)
    assert data(fetched)["source"]["name"] == "warehouse 2"

    deleted = data(
        await gql(
            client,
            "mutation($id: ID!) { deleteSource(id: $id) }",
            {"id": created["id"]},
            token=token,
        )
    )
    assert deleted == {"deleteSource": created["id"]}


async def test_source_used_by_a_model_cannot_be_deleted(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        "mutation($id: ID!) { deleteSource(id: $id) }",
        {"id": str(world.source_id)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["CONFLICT"]
    assert await table_counts(runtime) == before


async def test_model_lifecycle_exposes_table(client: httpx.AsyncClient, world: World) -> None:
    created = data(
        await gql(
            client,
            f"""mutation($ws: ID!, $source: ID!) {{ createModel(workspaceId: $ws, input: {{
              name: "people", sourceId: $source, table: "customers", primaryKey: "id"
            }}) {{ {MODEL} }} }}""",
            {"ws": str(world.workspace_id), "source": str(world.source_id)},
            token=world.editor_token,
        )
    )["createModel"]
    assert created["table"] == "customers" and created["query"] is None
    assert [column["name"] for column in created["columns"]] == CUSTOMER_COLUMNS
    assert created["source"] == {"id": str(world.source_id), "name": "warehouse"}

    updated = data(
        await gql(
            client,
            f"""mutation($id: ID!) {{
              updateModel(id: $id, input: {{query: "select id, email from customers"}}) {{
                {MODEL}
              }}
            }}""",
            {"id": created["id"]},
            token=world.editor_token,
        )
    )["updateModel"]
    assert updated["query"] == "select id, email from customers" and updated["table"] is None
    assert updated["columns"] == [
        {"name": "id", "type": "number"},
        {"name": "email", "type": "string"},
    ]

    listed = data(
        await gql(
            client, "{ models { totalCount edges { node { name } } } }", token=world.viewer_token
        )
    )
    assert listed["models"]["totalCount"] == 2
    assert [e["node"]["name"] for e in listed["models"]["edges"]] == ["customers", "people"]

    deleted = data(
        await gql(
            client,
            "mutation($id: ID!) { deleteModel(id: $id) }",
            {"id": created["id"]},
            token=world.editor_token,
        )
    )
    assert deleted == {"deleteModel": created["id"]}


async def test_model_with_query_and_table_is_bad_user_input(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        """mutation($ws: ID!, $source: ID!) { createModel(workspaceId: $ws, input: {
          name: "both", sourceId: $source, table: "t", query: "select 1", primaryKey: "id"
        }) { id } }""",
        {"ws": str(world.workspace_id), "source": str(world.source_id)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "query" in body["errors"][0]["message"]
    assert await table_counts(runtime) == before


async def test_audience_lifecycle(client: httpx.AsyncClient, world: World) -> None:
    audience_filter = {"column": "country", "op": "in", "value": ["US", "CA"]}
    created = data(
        await gql(
            client,
            f"""mutation($ws: ID!, $model: ID!, $filter: JSON) {{
              createAudience(workspaceId: $ws, input: {{
                name: "north america", modelId: $model, filter: $filter
              }}) {{ {AUDIENCE} }}
            }}""",
            {
                "ws": str(world.workspace_id),
                "model": str(world.model_id),
                "filter": audience_filter,
            },
            token=world.editor_token,
        )
    )["createAudience"]
    assert created["filter"] == audience_filter and created["description"] == ""
    assert created["model"] == {
        "id": str(world.model_id),
        "name": "customers",
        "source": {"name": "warehouse"},
    }

    updated = data(
        await gql(
            client,
            f"""mutation($id: ID!) {{
              updateAudience(id: $id, input: {{description: "US and Canada"}}) {{ {AUDIENCE} }}
            }}""",
            {"id": created["id"]},
            token=world.editor_token,
        )
    )["updateAudience"]
    assert updated["description"] == "US and Canada" and updated["filter"] == audience_filter

    fetched = data(
        await gql(
            client,
            "query($id: ID!) { audience(id: $id) { name } }",
            {"id": created["id"]},
            token=world.viewer_token,
        )
    )
    assert fetched == {"audience": {"name": "north america"}}

    deleted = data(
        await gql(
            client,
            "mutation($id: ID!) { deleteAudience(id: $id) }",
            {"id": created["id"]},
            token=world.editor_token,
        )
    )
    assert deleted == {"deleteAudience": created["id"]}


async def test_audience_used_by_a_sync_cannot_be_deleted(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await create_sync(runtime, world)
    before = await table_counts(runtime)
    body = await gql(
        client,
        "mutation($id: ID!) { deleteAudience(id: $id) }",
        {"id": str(world.audience_id)},
        token=world.admin_token,
    )
    assert body["data"] == {"deleteAudience": None}
    assert error_codes(body) == ["CONFLICT"]
    assert str(world.audience_id) in body["errors"][0]["message"]
    assert await table_counts(runtime) == before


async def test_audience_preview_is_computed_on_the_source(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    preview = "query($id: ID!) { audiencePreview(audienceId: $id) { size sample } }"
    body = await gql(client, preview, {"id": str(world.audience_id)}, token=world.viewer_token)
    result = data(body)["audiencePreview"]
    assert result["size"] == len(HIGH_VALUE_IDS)
    assert [row["id"] for row in result["sample"]] == HIGH_VALUE_IDS
    assert list(result["sample"][0]) == CUSTOMER_COLUMNS
    other = await create_world(runtime)
    foreign = await gql(client, preview, {"id": str(other.audience_id)}, token=world.viewer_token)
    assert error_codes(foreign) == ["NOT_FOUND"]


async def test_destination_secrets_are_write_only(client: httpx.AsyncClient, world: World) -> None:
    created = data(
        await gql(
            client,
            f"""mutation($ws: ID!, $config: JSON!) {{
              createDestination(workspaceId: $ws, input: {{
                name: "crm hook", type: webhook, config: $config
              }}) {{ {DESTINATION} }}
            }}""",
            {
                "ws": str(world.workspace_id),
                "config": {"url": "https://crm.example.com/in", "secret": "topsecret"},
            },
            token=world.editor_token,
        )
    )["createDestination"]
    assert created["type"] == "webhook"
    assert created["config"] == {"url": "https://crm.example.com/in"}
    assert created["secretFields"] == ["secret"]

    # A new config is merged over the stored one: the secret stays set.
    updated_body = await gql(
        client,
        f"""mutation($id: ID!) {{ updateDestination(id: $id, input: {{
          config: {{url: "https://crm.example.com/v2"}}
        }}) {{ {DESTINATION} }} }}""",
        {"id": created["id"]},
        token=world.editor_token,
    )
    updated = data(updated_body)["updateDestination"]
    assert updated["config"] == {"url": "https://crm.example.com/v2"}
    assert updated["secretFields"] == ["secret"]

    listed = await gql(
        client,
        f"{{ destinations {{ totalCount edges {{ node {{ {DESTINATION} }} }} }} }}",
        token=world.viewer_token,
    )
    assert data(listed)["destinations"]["totalCount"] == 2
    assert "topsecret" not in str(listed) and "topsecret" not in str(updated_body)

    deleted = data(
        await gql(
            client,
            "mutation($id: ID!) { deleteDestination(id: $id) }",
            {"id": created["id"]},
            token=world.editor_token,
        )
    )
    assert deleted == {"deleteDestination": created["id"]}


async def test_private_destination_address_is_bad_user_input(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    before = await table_counts(runtime)
    body = await gql(
        client,
        """mutation($ws: ID!) { createDestination(workspaceId: $ws, input: {
          name: "internal", type: webhook, config: {url: "http://127.0.0.1:9000/hook"}
        }) { id } }""",
        {"ws": str(world.workspace_id)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert error_fields(body) == ["config.url"]
    assert await table_counts(runtime) == before


async def test_destination_used_by_a_sync_cannot_be_deleted(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    await create_sync(runtime, world)
    before = await table_counts(runtime)
    body = await gql(
        client,
        "mutation($id: ID!) { deleteDestination(id: $id) }",
        {"id": str(world.destination_id)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["CONFLICT"]
    assert await table_counts(runtime) == before


@pytest.mark.parametrize(
    "mutation",
    [
        'createSource(workspaceId: $ws, input: {name: "s", type: sqlite, '
        'config: {url: "sqlite:///s.db"}}) { id }',
        'createModel(workspaceId: $ws, input: {name: "m", sourceId: $source, table: "t", '
        'primaryKey: "id"}) { id }',
        'createAudience(workspaceId: $ws, input: {name: "a", modelId: $model}) { id }',
        'createDestination(workspaceId: $ws, input: {name: "d", type: webhook, '
        'config: {url: "https://x.example.com"}}) { id }',
        'updateSource(id: $source, input: {name: "renamed"}) { id }',
        'updateModel(id: $model, input: {name: "renamed"}) { id }',
        'updateAudience(id: $audience, input: {name: "renamed"}) { id }',
        'updateDestination(id: $destination, input: {name: "renamed"}) { id }',
        "deleteAudience(id: $audience)",
        "deleteDestination(id: $destination)",
    ],
)
async def test_viewer_cannot_write_and_nothing_is_written(
    client: httpx.AsyncClient, runtime: Runtime, world: World, mutation: str
) -> None:
    variables = {
        "ws": str(world.workspace_id),
        "source": str(world.source_id),
        "model": str(world.model_id),
        "audience": str(world.audience_id),
        "destination": str(world.destination_id),
    }
    used = [name for name in variables if f"${name}" in mutation]
    declared = ", ".join(f"${name}: ID!" for name in used)
    before = await table_counts(runtime)
    body = await gql(
        client,
        f"mutation({declared}) {{ {mutation} }}",
        {name: variables[name] for name in used},
        token=world.viewer_token,
    )
    assert error_codes(body) == ["FORBIDDEN"]
    assert await table_counts(runtime) == before
    names = data(
        await gql(
            client,
            "{ sources { edges { node { name } } } models { edges { node { name } } } "
            "audiences { edges { node { name } } } destinations { edges { node { name } } } }",
            token=world.viewer_token,
        )
    )
    assert "renamed" not in str(names)


async def test_check_source_and_refresh_model(client: httpx.AsyncClient, world: World) -> None:
    checked = await gql(
        client,
        "mutation($id: ID!) { checkSource(id: $id) { status } }",
        {"id": str(world.source_id)},
        token=world.viewer_token,
    )
    assert data(checked) == {"checkSource": {"status": "ok"}}
    refreshed = await gql(
        client,
        "mutation($id: ID!) { refreshModel(id: $id) { columns { name type } } }",
        {"id": str(world.model_id)},
        token=world.editor_token,
    )
    columns = data(refreshed)["refreshModel"]["columns"]
    assert [c["name"] for c in columns] == CUSTOMER_COLUMNS
    assert {c["name"]: c["type"] for c in columns}["created_at"] == "timestamp"
    world.source_path.rename(world.source_path.with_suffix(".gone"))
    try:
        failed = await gql(
            client,
            "mutation($id: ID!) { checkSource(id: $id) { status } }",
            {"id": str(world.source_id)},
            token=world.viewer_token,
        )
    finally:
        world.source_path.with_suffix(".gone").rename(world.source_path)
    assert error_codes(failed) == ["BAD_USER_INPUT"]
    assert error_fields(failed) == ["config.url"]
