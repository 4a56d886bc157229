"""The audience sync: which audience goes to which destination, how and when."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from graphql_schema.context import Info
from graphql_schema.pagination import DEFAULT_PAGE_SIZE, Connection, Window
from graphql_schema.scalars import to_id, to_optional_id
from graphql_schema.types.catalog import Audience, Destination
from graphql_schema.types.enums import SyncMode, SyncStatus
from graphql_schema.types.sync_run import SyncRun
from models import AudienceSync as AudienceSyncRow


@strawberry.type
class FieldMapping:
    source_column: str
    destination_field: str


@strawberry.type(description="Keeps a destination in step with an audience, run after run.")
class AudienceSync:
    id: strawberry.ID
    workspace_id: strawberry.ID
    audience_id: strawberry.ID
    destination_id: strawberry.ID
    name: str
    description: str
    field_mapping: list[FieldMapping]
    sync_mode: SyncMode
    schedule: str | None = strawberry.field(description="Five-field cron expression.")
    config: JSON = strawberry.field(description="Sync options (batch size, on exit …).")
    status: SyncStatus
    status_error: str
    created_by: strawberry.ID | None
    created_at: datetime
    updated_at: datetime
    last_synced_at: datetime | None
    last_run_id: strawberry.ID | None
    split_group_id: strawberry.ID | None

    @strawberry.field
    async def audience(self, info: Info) -> Audience:
        return Audience.from_row(
            await info.context.loaders.audience.load(uuid.UUID(self.audience_id))
        )

    @strawberry.field
    async def destination(self, info: Info) -> Destination:
        row = await info.context.loaders.destination.load(uuid.UUID(self.destination_id))
        return Destination.from_row(await info.context.service(), row)

    @strawberry.field(description="This sync's runs, newest first.")
    async def runs(
        self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[SyncRun]:
        window = Window.of(first, after)
        page = await info.context.loaders.runs.load(
            (uuid.UUID(self.id), window.offset, window.limit)
        )
        return Connection.from_page(page, SyncRun.from_row)

    @classmethod
    def from_row(cls, row: AudienceSyncRow) -> AudienceSync:
        return cls(
            id=to_id(row.id),
            workspace_id=to_id(row.workspace_id),
            audience_id=to_id(row.audience_id),
            destination_id=to_id(row.destination_id),
            name=row.name,
            description=row.description,
            field_mapping=[
                FieldMapping(
                    source_column=item["source_column"],
                    destination_field=item["destination_field"],
                )
                for item in row.field_mapping
            ],
            sync_mode=SyncMode(row.sync_mode),
            schedule=row.schedule,
            config=JSON(row.config),
            status=SyncStatus(row.status),
            status_error=row.status_error,
            created_by=to_optional_id(row.created_by),
            created_at=row.created_at,
            updated_at=row.updated_at,
            last_synced_at=row.last_synced_at,
            last_run_id=to_optional_id(row.last_run_id),
            split_group_id=to_optional_id(row.split_group_id),
        )
