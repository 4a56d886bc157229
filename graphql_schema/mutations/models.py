"""Create, change and delete parent models."""

from __future__ import annotations

import strawberry
from strawberry import UNSET

from app.services import parent_models
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id, to_id
from graphql_schema.types.catalog import ParentModel


@strawberry.input(description="Give exactly one of query and table.")
class ModelCreateInput:
    name: str
    source_id: strawberry.ID
    primary_key: str
    query: str | None = UNSET
    table: str | None = UNSET


@strawberry.input(description="A new query replaces the table and vice versa.")
class ModelUpdateInput:
    name: str | None = UNSET
    query: str | None = UNSET
    table: str | None = UNSET
    primary_key: str | None = UNSET


@strawberry.type
class ModelMutations:
    @strawberry.mutation(description="Introspect the model's columns again.")
    async def refresh_model(self, info: Info, id: strawberry.ID) -> ParentModel | None:
        row = await info.context.call(
            parent_models.refresh_model_columns,
            workspace_id=await info.context.workspace_id(),
            model_id=parse_id(id, "id"),
        )
        return ParentModel.from_row(row)

    @strawberry.mutation
    async def create_model(
        self, info: Info, workspace_id: strawberry.ID, input: ModelCreateInput
    ) -> ParentModel | None:
        row = await info.context.call(
            parent_models.create_model,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        return ParentModel.from_row(row)

    @strawberry.mutation
    async def update_model(
        self, info: Info, id: strawberry.ID, input: ModelUpdateInput
    ) -> ParentModel | None:
        row = await info.context.call(
            parent_models.update_model,
            workspace_id=await info.context.workspace_id(),
            model_id=parse_id(id, "id"),
            data=to_body(input),
        )
        return ParentModel.from_row(row)

    @strawberry.mutation(description="Returns the deleted id; CONFLICT while an audience uses it.")
    async def delete_model(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        model_id = parse_id(id, "id")
        await info.context.call(
            parent_models.delete_model,
            workspace_id=await info.context.workspace_id(),
            model_id=model_id,
        )
        return to_id(model_id)
