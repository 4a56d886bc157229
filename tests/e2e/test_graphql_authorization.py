"""Authorization matrix over every GraphQL operation: the matching error code, no change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.runtime import Runtime
from graphql_schema.schema import build_schema
from tests.e2e.conftest import ADMIN, RANK, READ, WRITE, Scene
from tests.factories import table_counts


@dataclass(frozen=True)
class Operation:
    field: str
    document: str
    #: Variable name -> key of the scene's ids ("ws", "sync", …) or a literal value.
    variables: dict[str, Any]
    role: str
    #: "workspace": names a workspace; "object": names an object by id; "self": neither.
    scope: str


def op(
    kind: str,
    field: str,
    args: str,
    selection: str,
    variables: dict[str, Any],
    role: str,
    scope: str,
) -> Operation:
    decl = ", ".join(f"${name}: {t}" for name, (t, _) in variables.items())
    call = f"{field}({args})" if args else field
    document = f"{kind}{f'({decl})' if decl else ''} {{ {call} {selection} }}"
    return Operation(field, document, {k: v for k, (_, v) in variables.items()}, role, scope)


W = {"w": ("ID!", "ws")}
ID = {"id": ("ID!",)}


def by_id(key: str) -> dict[str, Any]:
    return {"id": ("ID!", key)}


CONN = "{ totalCount }"
QUERIES = [
    op("query", "viewer", "", "{ role }", {}, READ, "self"),
    op("query", "workspace", "id: $w", "{ id }", W, READ, "workspace"),
    op("query", "audienceSyncs", "workspaceId: $w", CONN, W, READ, "workspace"),
    op("query", "audienceSync", "id: $id", "{ id }", by_id("sync"), READ, "object"),
    op("query", "syncRuns", "syncId: $id", CONN, by_id("sync"), READ, "object"),
    op("query", "syncRun", "id: $id", "{ id }", by_id("run"), READ, "object"),
    op("query", "audiences", "workspaceId: $w", CONN, W, READ, "workspace"),
    op("query", "audience", "id: $id", "{ id }", by_id("audience"), READ, "object"),
    op(
        "query", "audiencePreview", "audienceId: $id", "{ size }", by_id("audience"), READ, "object"
    ),
    op(
        "query",
        "splitGroups",
        "audienceId: $id",
        "{ id name percentage isHoldout }",
        by_id("audience"),
        READ,
        "object",
    ),
    op("query", "destinations", "workspaceId: $w", CONN, W, READ, "workspace"),
    op("query", "destination", "id: $id", "{ id }", by_id("destination"), READ, "object"),
    op("query", "destinationTypes", "", "{ type }", {}, READ, "self"),
    op("query", "sources", "workspaceId: $w", CONN, W, READ, "workspace"),
    op("query", "source", "id: $id", "{ id }", by_id("source"), READ, "object"),
    op("query", "models", "workspaceId: $w", CONN, W, READ, "workspace"),
    op("query", "model", "id: $id", "{ id }", by_id("model"), READ, "object"),
    op("query", "apiTokens", "workspaceId: $w", "{ id }", W, ADMIN, "workspace"),
    op("query", "auditLog", "workspaceId: $w", CONN, W, ADMIN, "workspace"),
]


def create(field: str, input_type: str, body: dict[str, Any], role: str = WRITE) -> Operation:
    return op(
        "mutation",
        field,
        "workspaceId: $w, input: $input",
        "{ id }" if field != "createApiToken" else "{ secret }",
        {**W, "input": (f"{input_type}!", body)},
        role,
        "workspace",
    )


def update(field: str, input_type: str, key: str) -> Operation:
    return op(
        "mutation",
        field,
        "id: $id, input: $input",
        "{ id }",
        {**by_id(key), "input": (f"{input_type}!", {"name": "renamed"})},
        WRITE,
        "object",
    )


def delete(field: str, key: str) -> Operation:
    return op("mutation", field, "id: $id", "", by_id(key), WRITE, "object")


MUTATIONS = [
    create(
        "createAudienceSync",
        "AudienceSyncCreateInput",
        {
            "name": "x",
            "audienceId": "@audience",
            "destinationId": "@destination",
            "fieldMapping": [{"sourceColumn": "email", "destinationField": "email"}],
            "syncMode": "add",
        },
    ),
    update("updateAudienceSync", "AudienceSyncUpdateInput", "sync"),
    delete("deleteAudienceSync", "sync"),
    op("mutation", "triggerAudienceSync", "id: $id", "{ id }", by_id("sync"), WRITE, "object"),
    op("mutation", "cancelSyncRun", "id: $id", "{ id }", by_id("run"), WRITE, "object"),
    create(
        "createSource",
        "SourceCreateInput",
        {"name": "s", "type": "sqlite", "config": {"url": "sqlite:///x.db"}},
    ),
    update("updateSource", "SourceUpdateInput", "source"),
    delete("deleteSource", "source"),
    op("mutation", "checkSource", "id: $id", "{ status }", by_id("source"), READ, "object"),
    create(
        "createModel",
        "ModelCreateInput",
        {"name": "m", "sourceId": "@source", "table": "t", "primaryKey": "id"},
    ),
    update("updateModel", "ModelUpdateInput", "model"),
    delete("deleteModel", "model"),
    op("mutation", "refreshModel", "id: $id", "{ id }", by_id("model"), WRITE, "object"),
    create("createAudience", "AudienceCreateInput", {"name": "a", "modelId": "@model"}),
    update("updateAudience", "AudienceUpdateInput", "audience"),
    delete("deleteAudience", "audience"),
    op(
        "mutation",
        "replaceSplitGroups",
        "audienceId: $id, groups: $groups",
        "{ id }",
        {
            **by_id("audience"),
            "groups": ("[SplitGroupInput!]!", [{"name": "A", "percentage": 100}]),
        },
        WRITE,
        "object",
    ),
    create(
        "createDestination",
        "DestinationCreateInput",
        {"name": "d", "type": "webhook", "config": {"url": "https://example.com/h"}},
    ),
    update("updateDestination", "DestinationUpdateInput", "destination"),
    delete("deleteDestination", "destination"),
    op(
        "mutation",
        "checkDestination",
        "id: $id",
        "{ status }",
        by_id("destination"),
        READ,
        "object",
    ),
    create("createApiToken", "ApiTokenCreateInput", {"name": "t"}, role=ADMIN),
    op("mutation", "revokeApiToken", "id: $id", "{ id }", by_id("token"), ADMIN, "object"),
]
OPERATIONS = QUERIES + MUTATIONS


def resolve(value: Any, ids: dict[str, uuid.UUID]) -> Any:
    if isinstance(value, str):
        if value.startswith("@"):
            return str(ids[value[1:]])
        return str(ids[value]) if value in ids else value
    if isinstance(value, dict):
        return {k: resolve(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, ids) for v in value]
    return value


async def run(
    client: httpx.AsyncClient, operation: Operation, ids: dict[str, uuid.UUID], token: str | None
) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql",
        headers=headers,
        json={"query": operation.document, "variables": resolve(operation.variables, ids)},
    )
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload.get("errors"), (operation.field, token is not None, payload)
    assert payload["data"] is None or payload["data"][operation.field] is None
    code: str = payload["errors"][0]["extensions"]["code"]
    return code


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: o.field)
async def test_operation_refuses_callers_without_the_right(
    client: httpx.AsyncClient, runtime: Runtime, scene: Scene, operation: Operation
) -> None:
    ids, world = scene.ids, scene.world
    before = await table_counts(runtime)
    assert await run(client, operation, ids, None) == "UNAUTHENTICATED"
    assert await run(client, operation, ids, "ssk_not-a-real-token") == "UNAUTHENTICATED"
    assert await run(client, operation, ids, scene.revoked_token) == "UNAUTHENTICATED"
    if operation.scope == "workspace":
        # A token of another workspace naming this one.
        assert await run(client, operation, ids, scene.other.admin_token) == "FORBIDDEN"
    if operation.scope == "object":
        # This workspace's object asked for with another workspace's token: absent there.
        assert await run(client, operation, ids, scene.other.admin_token) == "NOT_FOUND"
        foreign = {**scene.foreign, "ws": world.workspace_id}
        assert await run(client, operation, foreign, world.admin_token) == "NOT_FOUND"
    for role, token in ((READ, world.viewer_token), (WRITE, world.editor_token)):
        if RANK[role] < RANK[operation.role]:
            assert await run(client, operation, ids, token) == "FORBIDDEN"
    assert await table_counts(runtime) == before


def test_the_matrix_covers_every_root_field() -> None:
    schema = build_schema()._schema
    roots = set(schema.query_type.fields) | set(schema.mutation_type.fields)  # type: ignore[union-attr]
    assert {o.field for o in OPERATIONS} == roots
