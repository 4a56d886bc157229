"""Create, change and delete sources."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON

from app.services import sources
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id, to_id
from graphql_schema.types.catalog import Source, SourceCheck
from graphql_schema.types.enums import SourceType


@strawberry.input
class SourceCreateInput:
    name: str
    type: SourceType
    config: JSON = strawberry.field(description='{"url": "<SQLAlchemy URL>"}')


@strawberry.input
class SourceUpdateInput:
    name: str | None = UNSET
    type: SourceType | None = UNSET
    config: JSON | None = UNSET


@strawberry.type
class SourceMutations:
    @strawberry.mutation
    async def create_source(
        self, info: Info, workspace_id: strawberry.ID, input: SourceCreateInput
    ) -> Source | None:
        row = await info.context.call(
            sources.create_source,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        return Source.from_row(await info.context.service(), row)

    @strawberry.mutation
    async def update_source(
        self, info: Info, id: strawberry.ID, input: SourceUpdateInput
    ) -> Source | None:
        row = await info.context.call(
            sources.update_source,
            workspace_id=await info.context.workspace_id(),
            source_id=parse_id(id, "id"),
            data=to_body(input),
        )
        return Source.from_row(await info.context.service(), row)

    @strawberry.mutation(
        description="Connect and run a trivial query; BAD_USER_INPUT naming config.url if not."
    )
    async def check_source(self, info: Info, id: strawberry.ID) -> SourceCheck | None:
        await info.context.call(
            sources.check_source,
            workspace_id=await info.context.workspace_id(),
            source_id=parse_id(id, "id"),
        )
        return SourceCheck()

    @strawberry.mutation(description="Returns the deleted id; CONFLICT while a model uses it.")
    async def delete_source(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        source_id = parse_id(id, "id")
        await info.context.call(
            sources.delete_source,
            workspace_id=await info.context.workspace_id(),
            source_id=source_id,
        )
        return to_id(source_id)
