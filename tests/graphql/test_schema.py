"""The schema itself: the fixed names of DESIGN §3.3, executed directly (no HTTP)."""

from __future__ import annotations

from graphql import GraphQLObjectType

from app.runtime import Runtime
from graphql_schema.context import GraphQLContext
from graphql_schema.schema import build_schema
from tests.factories import World

QUERIES = {
    "viewer",
    "workspace",
    "audienceSyncs",
    "audienceSync",
    "syncRuns",
    "syncRun",
    "audiences",
    "audience",
    "audiencePreview",
    "splitGroups",
    "destinations",
    "destination",
    "destinationTypes",
    "sources",
    "source",
    "models",
    "model",
    "apiTokens",
    "auditLog",
}
MUTATIONS = {
    "createAudienceSync",
    "updateAudienceSync",
    "deleteAudienceSync",
    "triggerAudienceSync",
    "cancelSyncRun",
    *(
        f"{verb}{noun}"
        for verb in ("create", "update", "delete")
        for noun in ("Source", "Model", "Audience", "Destination")
    ),
    "checkSource",
    "checkDestination",
    "refreshModel",
    "replaceSplitGroups",
    "createApiToken",
    "revokeApiToken",
}


def fields_of(type_name: str) -> dict[str, list[str]]:
    graphql_type = build_schema()._schema.get_type(type_name)
    assert isinstance(graphql_type, GraphQLObjectType)
    return {name: sorted(field.args) for name, field in graphql_type.fields.items()}


def test_root_fields_and_their_arguments() -> None:
    queries, mutations = fields_of("Query"), fields_of("Mutation")
    assert set(queries) == QUERIES
    assert set(mutations) == MUTATIONS
    assert queries["audienceSyncs"] == ["after", "first", "workspaceId"]
    assert queries["syncRuns"] == ["after", "first", "syncId"]
    assert queries["audiencePreview"] == ["audienceId", "columns"]
    assert queries["splitGroups"] == ["audienceId"]
    assert mutations["replaceSplitGroups"] == ["audienceId", "groups"]
    assert mutations["createAudienceSync"] == ["input", "workspaceId"]
    assert mutations["triggerAudienceSync"] == ["dryRun", "fullResync", "id", "retryFailedOnly"]


def test_sync_fields_mirror_the_rest_object() -> None:
    assert set(fields_of("AudienceSync")) == {
        "id", "workspaceId", "audienceId", "destinationId", "name", "description",
        "fieldMapping", "syncMode", "schedule", "config", "status", "statusError",
        "createdBy", "createdAt", "updatedAt", "lastSyncedAt", "lastRunId", "splitGroupId",
        "audience", "destination", "runs",
    }  # fmt: skip
    assert set(fields_of("AudienceSyncConnection")) == {"edges", "pageInfo", "totalCount"}


async def test_execute_directly_with_a_context(runtime: Runtime, world: World) -> None:
    schema = build_schema()
    context = GraphQLContext(runtime, f"Bearer {world.editor_token}")
    try:
        result = await schema.execute(
            "{ viewer { role } sources { edges { node { name type config } } } }",
            context_value=context,
        )
    finally:
        await context.close()
    assert result.errors is None
    assert result.data == {
        "viewer": {"role": "editor"},
        "sources": {
            "edges": [
                {
                    "node": {
                        "name": "warehouse",
                        "type": "sqlite",
                        "config": {"url": world.source_url},
                    }
                }
            ]
        },
    }
