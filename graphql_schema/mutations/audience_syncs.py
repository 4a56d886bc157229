"""Create, change and delete audience syncs."""

from __future__ import annotations

import strawberry
from strawberry import UNSET
from strawberry.scalars import JSON

from app.services import syncs
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id, to_id
from graphql_schema.types.audience_sync import AudienceSync
from graphql_schema.types.enums import SyncMode, SyncStatus


@strawberry.input
class FieldMappingInput:
    source_column: str
    destination_field: str


@strawberry.input
class AudienceSyncCreateInput:
    name: str
    audience_id: strawberry.ID
    destination_id: strawberry.ID
    field_mapping: list[FieldMappingInput]
    sync_mode: SyncMode
    description: str | None = UNSET
    schedule: str | None = strawberry.field(
        default=UNSET, description="Five-field cron; null or left out: on demand only."
    )
    config: JSON | None = strawberry.field(
        default=UNSET,
        description="batch_size, on_exit, max_removal_ratio, timezone, retry_failed_rows.",
    )
    split_group_id: strawberry.ID | None = UNSET
    status: SyncStatus | None = strawberry.field(
        default=UNSET, description="draft, active (the default) or paused."
    )


@strawberry.input(description="Only the fields given change; null clears a nullable field.")
class AudienceSyncUpdateInput:
    name: str | None = UNSET
    description: str | None = UNSET
    audience_id: strawberry.ID | None = UNSET
    destination_id: strawberry.ID | None = UNSET
    field_mapping: list[FieldMappingInput] | None = UNSET
    sync_mode: SyncMode | None = UNSET
    schedule: str | None = UNSET
    config: JSON | None = UNSET
    split_group_id: strawberry.ID | None = UNSET
    status: SyncStatus | None = UNSET


@strawberry.type
class AudienceSyncMutations:
    @strawberry.mutation
    async def create_audience_sync(
        self, info: Info, workspace_id: strawberry.ID, input: AudienceSyncCreateInput
    ) -> AudienceSync | None:
        row = await info.context.call(
            syncs.create_audience_sync,
            workspace_id=parse_id(workspace_id, "workspaceId"),
            data=to_body(input),
        )
        return AudienceSync.from_row(row)

    @strawberry.mutation
    async def update_audience_sync(
        self, info: Info, id: strawberry.ID, input: AudienceSyncUpdateInput
    ) -> AudienceSync | None:
        row = await info.context.call(
            syncs.update_audience_sync,
            workspace_id=await info.context.workspace_id(),
            sync_id=parse_id(id, "id"),
            data=to_body(input),
        )
        return AudienceSync.from_row(row)

    @strawberry.mutation(description="Delete a sync with its runs; returns the deleted id.")
    async def delete_audience_sync(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        sync_id = parse_id(id, "id")
        await info.context.call(
            syncs.delete_audience_sync,
            workspace_id=await info.context.workspace_id(),
            sync_id=sync_id,
        )
        return to_id(sync_id)
