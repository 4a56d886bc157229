"""Replace an audience's split groups as a whole."""

from __future__ import annotations

import strawberry

from app.services import split_groups
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id
from graphql_schema.types.catalog import SplitGroup


@strawberry.input(description="Percentages are above 0, two decimals at most, and sum to 100.")
class SplitGroupInput:
    name: str
    percentage: float
    is_holdout: bool = False


@strawberry.type
class SplitGroupMutations:
    @strawberry.mutation(
        description="The groups replace the whole set (a group keeps its id while its name "
        "stays); CONFLICT when a group a sync targets would be removed or made a holdout."
    )
    async def replace_split_groups(
        self, info: Info, audience_id: strawberry.ID, groups: list[SplitGroupInput]
    ) -> list[SplitGroup] | None:
        rows = await info.context.call(
            split_groups.replace_split_groups,
            workspace_id=await info.context.workspace_id(),
            audience_id=parse_id(audience_id, "audienceId"),
            data=to_body(groups),
        )
        return [SplitGroup.from_row(row) for row in rows]
