"""Create, change and delete destinations. Secret settings are write-only."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON

from app.services import destinations
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id, to_id
from graphql_schema.types.catalog import Destination, DestinationCheck
from graphql_schema.types.enums import DestinationType


@strawberry.input
class DestinationCreateInput:
    name: str
    type: DestinationType
    config: JSON = strawberry.field(description='webhook: {"url", "headers", "secret"}')


@strawberry.input(description="A new config is merged over the stored one.")
class DestinationUpdateInput:
    name: str | None = UNSET
    config: JSON | None = UNSET


@strawberry.type
class DestinationMutations:
    @strawberry.mutation
    async def create_destination(
        self, info: Info, workspace_id: strawberry.ID, input: DestinationCreateInput
    ) -> Destination | None:
        row = await info.context.call(
            destinations.create_destination,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        return Destination.from_row(await info.context.service(), row)

    @strawberry.mutation
    async def update_destination(
        self, info: Info, id: strawberry.ID, input: DestinationUpdateInput
    ) -> Destination | None:
        row = await info.context.call(
            destinations.update_destination,
            workspace_id=await info.context.workspace_id(),
            destination_id=parse_id(id, "id"),
            data=to_body(input),
        )
        return Destination.from_row(await info.context.service(), row)

    @strawberry.mutation(
        description="Let the connector test the stored config and credentials; "
        "BAD_USER_INPUT naming config with the reason if not."
    )
    async def check_destination(self, info: Info, id: strawberry.ID) -> DestinationCheck | None:
        await info.context.call(
            destinations.check_destination,
            workspace_id=await info.context.workspace_id(),
            destination_id=parse_id(id, "id"),
        )
        return DestinationCheck()

    @strawberry.mutation(description="Returns the deleted id; CONFLICT while a sync uses it.")
    async def delete_destination(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        destination_id = parse_id(id, "id")
        await info.context.call(
            destinations.delete_destination,
            workspace_id=await info.context.workspace_id(),
            destination_id=destination_id,
        )
        return to_id(destination_id)
