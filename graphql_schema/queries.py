"""The Query root. Lists take an optional `workspaceId` (default: the token's workspace);
single objects are looked up by id in the token's workspace. Root fields are nullable, so
one failed field (NOT_FOUND …) does not wipe out its siblings."""

from __future__ import annotations

import strawberry

from app.services import (
    audiences,
    audit,
    destinations,
    parent_models,
    runs,
    sources,
    split_groups,
    syncs,
    tokens,
    workspaces,
)
from app.services.destination_types import list_destination_types
from graphql_schema.context import Info
from graphql_schema.pagination import DEFAULT_PAGE_SIZE, Connection, Window
from graphql_schema.scalars import parse_id
from graphql_schema.types.audience_sync import AudienceSync
from graphql_schema.types.audit import AuditEntry
from graphql_schema.types.catalog import (
    Audience,
    AudiencePreview,
    Destination,
    DestinationTypeInfo,
    ParentModel,
    Source,
    SplitGroup,
)
from graphql_schema.types.sync_run import SyncRun
from graphql_schema.types.token import ApiToken
from graphql_schema.types.workspace import Account, Viewer, Workspace

ID = strawberry.ID


@strawberry.type
class Query:
    @strawberry.field(description="Who is calling: account, workspace and role.")
    async def viewer(self, info: Info) -> Viewer | None:
        account, workspace = await info.context.call(workspaces.get_viewer)
        role = (await info.context.principal()).role
        return Viewer(
            account=Account.from_row(account), workspace=Workspace.from_row(workspace), role=role
        )

    @strawberry.field
    async def workspace(self, info: Info, id: ID) -> Workspace | None:
        row = await info.context.call(workspaces.get_workspace, workspace_id=parse_id(id, "id"))
        return Workspace.from_row(row)

    @strawberry.field(description="The workspace's audience syncs, oldest first.")
    async def audience_syncs(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[AudienceSync] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            syncs.list_audience_syncs,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        return Connection.from_page(page, AudienceSync.from_row)

    @strawberry.field
    async def audience_sync(self, info: Info, id: ID) -> AudienceSync | None:
        row = await info.context.call(
            syncs.get_audience_sync,
            workspace_id=await info.context.workspace_id(),
            sync_id=parse_id(id, "id"),
        )
        return AudienceSync.from_row(row)

    @strawberry.field(description="A sync's runs, newest first.")
    async def sync_runs(
        self, info: Info, sync_id: ID, first: int = DEFAULT_PAGE_SIZE, after: str | None = None
    ) -> Connection[SyncRun] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            runs.list_sync_runs,
            workspace_id=await info.context.workspace_id(),
            sync_id=parse_id(sync_id, "syncId"),
            offset=window.offset,
            limit=window.limit,
        )
        return Connection.from_page(page, SyncRun.from_row)

    @strawberry.field
    async def sync_run(self, info: Info, id: ID) -> SyncRun | None:
        row = await info.context.call(
            runs.get_sync_run,
            workspace_id=await info.context.workspace_id(),
            run_id=parse_id(id, "id"),
        )
        return SyncRun.from_row(row)

    @strawberry.field
    async def audiences(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[Audience] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            audiences.list_audiences,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        return Connection.from_page(page, Audience.from_row)

    @strawberry.field
    async def audience(self, info: Info, id: ID) -> Audience | None:
        row = await info.context.call(
            audiences.get_audience,
            workspace_id=await info.context.workspace_id(),
            audience_id=parse_id(id, "id"),
        )
        return Audience.from_row(row)

    @strawberry.field(description="Size, a small sample and split-group sizes, computed now.")
    async def audience_preview(
        self, info: Info, audience_id: ID, columns: list[str] | None = None
    ) -> AudiencePreview | None:
        result = await info.context.call(
            audiences.preview_audience,
            workspace_id=await info.context.workspace_id(),
            audience_id=parse_id(audience_id, "audienceId"),
            data=None if columns is None else {"columns": columns},
        )
        return AudiencePreview.from_result(result)

    @strawberry.field(description="An audience's split groups, in order.")
    async def split_groups(self, info: Info, audience_id: ID) -> list[SplitGroup] | None:
        rows = await info.context.call(
            split_groups.list_split_groups,
            workspace_id=await info.context.workspace_id(),
            audience_id=parse_id(audience_id, "audienceId"),
        )
        return [SplitGroup.from_row(row) for row in rows]

    @strawberry.field
    async def destinations(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[Destination] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            destinations.list_destinations,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        service = await info.context.service()
        return Connection.from_page(page, lambda row: Destination.from_row(service, row))

    @strawberry.field
    async def destination(self, info: Info, id: ID) -> Destination | None:
        row = await info.context.call(
            destinations.get_destination,
            workspace_id=await info.context.workspace_id(),
            destination_id=parse_id(id, "id"),
        )
        return Destination.from_row(await info.context.service(), row)

    @strawberry.field(
        description="Every destination type: config settings (secret ones flagged), the "
        "fields a sync may map to, limits. The same for every workspace."
    )
    async def destination_types(self, info: Info) -> list[DestinationTypeInfo] | None:
        types = await info.context.call(list_destination_types)
        return [DestinationTypeInfo.from_result(t) for t in types]

    @strawberry.field
    async def sources(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[Source] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            sources.list_sources,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        service = await info.context.service()
        return Connection.from_page(page, lambda row: Source.from_row(service, row))

    @strawberry.field
    async def source(self, info: Info, id: ID) -> Source | None:
        row = await info.context.call(
            sources.get_source,
            workspace_id=await info.context.workspace_id(),
            source_id=parse_id(id, "id"),
        )
        return Source.from_row(await info.context.service(), row)

    @strawberry.field(description="Parent models: one row per person.")
    async def models(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[ParentModel] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            parent_models.list_models,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        return Connection.from_page(page, ParentModel.from_row)

    @strawberry.field
    async def model(self, info: Info, id: ID) -> ParentModel | None:
        row = await info.context.call(
            parent_models.get_model,
            workspace_id=await info.context.workspace_id(),
            model_id=parse_id(id, "id"),
        )
        return ParentModel.from_row(row)

    @strawberry.field(description="The workspace's API tokens (admins only).")
    async def api_tokens(self, info: Info, workspace_id: ID | None = None) -> list[ApiToken] | None:
        views = await info.context.call(
            tokens.list_tokens, workspace_id=await info.context.workspace_id(workspace_id)
        )
        return [ApiToken.from_view(view) for view in views]

    @strawberry.field(description="Every change in the workspace, newest first (admins only).")
    async def audit_log(
        self,
        info: Info,
        workspace_id: ID | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> Connection[AuditEntry] | None:
        window = Window.of(first, after)
        page = await info.context.call(
            audit.list_audit_log,
            workspace_id=await info.context.workspace_id(workspace_id),
            offset=window.offset,
            limit=window.limit,
        )
        return Connection.from_page(page, AuditEntry.from_row)
