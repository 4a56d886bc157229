"""Create, change and delete audiences."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON

from app.services import audiences
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id, to_id
from graphql_schema.types.catalog import Audience


@strawberry.input
class AudienceCreateInput:
    name: str
    model_id: strawberry.ID
    description: str | None = UNSET
    filter: JSON | None = strawberry.field(
        default=UNSET, description="The filter tree (DESIGN §6); left out: everyone."
    )


@strawberry.input
class AudienceUpdateInput:
    name: str | None = UNSET
    description: str | None = UNSET
    filter: JSON | None = UNSET


@strawberry.type
class AudienceMutations:
    @strawberry.mutation
    async def create_audience(
        self, info: Info, workspace_id: strawberry.ID, input: AudienceCreateInput
    ) -> Audience | None:
        row = await info.context.call(
            audiences.create_audience,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        return Audience.from_row(row)

    @strawberry.mutation
    async def update_audience(
        self, info: Info, id: strawberry.ID, input: AudienceUpdateInput
    ) -> Audience | None:
        row = await info.context.call(
            audiences.update_audience,
            workspace_id=await info.context.workspace_id(),
            audience_id=parse_id(id, "id"),
            data=to_body(input),
        )
        return Audience.from_row(row)

    @strawberry.mutation(description="Returns the deleted id; CONFLICT while a sync uses it.")
    async def delete_audience(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        audience_id = parse_id(id, "id")
        await info.context.call(
            audiences.delete_audience,
            workspace_id=await info.context.workspace_id(),
            audience_id=audience_id,
        )
        return to_id(audience_id)
