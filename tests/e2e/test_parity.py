"""One scenario, two transports: GraphQL and REST give the same objects and the same errors."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.factories import World

SYNC_FIELDS = """id workspaceId audienceId destinationId name description
  fieldMapping { sourceColumn destinationField } syncMode schedule config status statusError
  createdBy createdAt updatedAt lastSyncedAt lastRunId splitGroupId"""


def snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)([A-Z])", r"_\1", k).lower(): snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake(item) for item in value]
    return value


def camel(value: Any) -> Any:
    """GraphQL input names; JSON-valued fields (`config`, `filter`) keep their own keys."""
    if isinstance(value, dict):
        return {
            re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): (
                v if k in ("config", "filter") else camel(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camel(item) for item in value]
    return value


class Transports:
    def __init__(self, client: httpx.AsyncClient, world: World) -> None:
        self.client, self.world = client, world
        self.base = f"/api/v1/workspaces/{world.workspace_id}"

    async def rest(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.client.request(
            method, self.base + path, json=body, headers=self.world.headers()
        )

    async def gql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.world.headers()
        )
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        return payload

    async def gql_sync(self, sync_id: str) -> dict[str, Any]:
        data = await self.gql(
            f"query($id: ID!) {{ audienceSync(id: $id) {{ {SYNC_FIELDS} }} }}", id=sync_id
        )
        return dict(snake(data["data"]["audienceSync"]))


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


async def test_audience_sync_lifecycle_is_the_same_through_both_apis(
    client: httpx.AsyncClient, world: World
) -> None:
    t = Transports(client, world)
    body = world.sync_body(
        description="d", config={"batch_size": 500, "timezone": "Europe/Paris"}, status="paused"
    )
    rest_created = await t.rest("POST", "/audience-syncs", body)
    assert rest_created.status_code == 201
    a = rest_created.json()
    assert await t.gql_sync(a["id"]) == a

    created = await t.gql(
        f"mutation($w: ID!, $input: AudienceSyncCreateInput!) "
        f"{{ createAudienceSync(workspaceId: $w, input: $input) {{ {SYNC_FIELDS} }} }}",
        w=str(world.workspace_id),
        input=camel(body),
    )
    assert "errors" not in created, created
    b = snake(created["data"]["createAudienceSync"])
    assert (await t.rest("GET", f"/audience-syncs/{b['id']}")).json() == b
    volatile = ("id", "created_at", "updated_at")
    assert without(a, *volatile) == without(b, *volatile)

    change = {"schedule": None, "status": "active", "name": "renamed"}
    a2 = (await t.rest("PUT", f"/audience-syncs/{a['id']}", change)).json()
    updated = await t.gql(
        f"mutation($id: ID!, $input: AudienceSyncUpdateInput!) "
        f"{{ updateAudienceSync(id: $id, input: $input) {{ {SYNC_FIELDS} }} }}",
        id=b["id"],
        input=camel(change),
    )
    b2 = snake(updated["data"]["updateAudienceSync"])
    assert without(a2, *volatile) == without(b2, *volatile)
    assert a2["schedule"] is None and a2["updated_at"] > a["updated_at"]

    listed = (await t.rest("GET", "/audience-syncs")).json()
    connection = await t.gql(
        "{ audienceSyncs(first: 100) { totalCount edges { node { id name } } } }"
    )
    nodes = [e["node"] for e in connection["data"]["audienceSyncs"]["edges"]]
    assert [(s["id"], s["name"]) for s in listed] == [(n["id"], n["name"]) for n in nodes]
    assert connection["data"]["audienceSyncs"]["totalCount"] == len(listed) == 2

    deleted = await t.gql("mutation($id: ID!) { deleteAudienceSync(id: $id) }", id=a["id"])
    assert deleted["data"]["deleteAudienceSync"] == a["id"]
    assert (await t.rest("GET", f"/audience-syncs/{a['id']}")).status_code == 404
    assert (await t.rest("DELETE", f"/audience-syncs/{b['id']}")).json() == {"status": "deleted"}
    gone = await t.gql("query($id: ID!) { audienceSync(id: $id) { id } }", id=b["id"])
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"


BAD_SYNC_INPUTS = [
    {"name": ""},
    {"sync_mode": "sideways"},
    {"schedule": "every day"},
    {"field_mapping": []},
    {"config": {"batch_size": 0}},
    {"config": {"unknown_option": 1}},
]


async def test_bad_input_names_the_same_fields_through_both_apis(
    client: httpx.AsyncClient, world: World
) -> None:
    t = Transports(client, world)
    for change in BAD_SYNC_INPUTS:
        body = world.sync_body(**change)
        rest = await t.rest("POST", "/audience-syncs", body)
        assert rest.status_code in (400, 422), (change, rest.text)
        rest_fields = sorted(d["field"] for d in rest.json()["error"]["details"])
        if "sync_mode" in change:
            continue  # the GraphQL enum refuses it before any resolver: a validation error
        result = await t.gql(
            "mutation($w: ID!, $input: AudienceSyncCreateInput!) "
            "{ createAudienceSync(workspaceId: $w, input: $input) { id } }",
            w=str(world.workspace_id),
            input=camel(body),
        )
        error = result["errors"][0]["extensions"]
        assert error["code"] == "BAD_USER_INPUT", (change, result)
        assert sorted(d["field"] for d in error["details"]) == rest_fields, change
    assert (await t.rest("GET", "/audience-syncs")).json() == []


async def test_catalog_objects_are_the_same_through_both_apis(
    client: httpx.AsyncClient, world: World
) -> None:
    t = Transports(client, world)
    destination = (await t.rest("GET", f"/destinations/{world.destination_id}")).json()
    data = await t.gql(
        "query($id: ID!) { destination(id: $id) { id workspaceId name type config secretFields "
        "createdBy createdAt updatedAt } }",
        id=str(world.destination_id),
    )
    assert snake(data["data"]["destination"]) == destination
    assert destination["secret_fields"] == ["secret"]
    audience = (await t.rest("GET", f"/audiences/{world.audience_id}")).json()
    data = await t.gql(
        "query($id: ID!) { audience(id: $id) { id workspaceId modelId name description filter "
        "createdBy createdAt updatedAt } }",
        id=str(world.audience_id),
    )
    assert snake(data["data"]["audience"]) == audience


async def test_preview_and_split_groups_are_the_same_through_both_apis(
    client: httpx.AsyncClient, world: World
) -> None:
    t = Transports(client, world)
    aid = str(world.audience_id)
    groups = [
        {"name": "A", "percentage": 45},
        {"name": "B", "percentage": 45},
        {"name": "control", "percentage": 10, "is_holdout": True},
    ]
    rest_groups = (await t.rest("PUT", f"/audiences/{aid}/split-groups", groups)).json()
    replaced = await t.gql(
        "mutation($id: ID!, $groups: [SplitGroupInput!]!) { replaceSplitGroups(audienceId: $id, "
        "groups: $groups) { id name percentage isHoldout } }",
        id=aid,
        groups=camel(groups),
    )
    assert "errors" not in replaced, replaced
    assert snake(replaced["data"]["replaceSplitGroups"]) == rest_groups  # ids kept by name
    listed = await t.gql(
        "query($id: ID!) { splitGroups(audienceId: $id) { id name percentage isHoldout } "
        "audience(id: $id) { splitGroups { id name percentage isHoldout } } }",
        id=aid,
    )
    assert snake(listed["data"]["splitGroups"]) == rest_groups
    assert snake(listed["data"]["audience"]["splitGroups"]) == rest_groups
    assert (await t.rest("GET", f"/audiences/{aid}/split-groups")).json() == rest_groups

    for columns in (None, ["email", "plan"]):
        body = None if columns is None else {"columns": columns}
        rest_preview = (await t.rest("POST", f"/audiences/{aid}/preview", body)).json()
        gql_preview = await t.gql(
            "query($id: ID!, $columns: [String!]) { audiencePreview(audienceId: $id, "
            "columns: $columns) { size sample splitGroups { id name size } } }",
            id=aid,
            columns=columns,
        )
        assert snake(gql_preview["data"]["audiencePreview"]) == rest_preview
    assert rest_preview["size"] == 4 and list(rest_preview["sample"][0]) == ["id", "email", "plan"]

    bad = [{"name": "A", "percentage": 50}, {"name": "B", "percentage": 49.999}]
    rest_bad = await t.rest("PUT", f"/audiences/{aid}/split-groups", bad)
    gql_bad = await t.gql(
        "mutation($id: ID!, $groups: [SplitGroupInput!]!) { replaceSplitGroups(audienceId: $id, "
        "groups: $groups) { id } }",
        id=aid,
        groups=bad,
    )
    rest_fields = [d["field"] for d in rest_bad.json()["error"]["details"]]
    assert rest_fields == ["split_groups[1].percentage"]
    assert [d["field"] for d in gql_bad["errors"][0]["extensions"]["details"]] == rest_fields
