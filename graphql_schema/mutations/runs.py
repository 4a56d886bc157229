"""Trigger and cancel runs."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry
from strawberry import UNSET

from app.services import runs
from graphql_schema.context import Info
from graphql_schema.inputs import to_body
from graphql_schema.scalars import parse_id
from graphql_schema.types.sync_run import SyncRun


@dataclass(frozen=True)
class TriggerArguments:
    """The trigger's arguments as the service's body (arguments left out stay out)."""

    full_resync: bool | None
    retry_failed_only: bool | None
    dry_run: bool | None


@strawberry.type
class RunMutations:
    @strawberry.mutation(description="Queue a run now; CONFLICT while a run is active.")
    async def trigger_audience_sync(
        self,
        info: Info,
        id: strawberry.ID,
        full_resync: bool | None = UNSET,
        retry_failed_only: bool | None = UNSET,
        dry_run: bool | None = UNSET,
    ) -> SyncRun | None:
        options = TriggerArguments(
            full_resync=full_resync, retry_failed_only=retry_failed_only, dry_run=dry_run
        )
        row = await info.context.call(
            runs.trigger_sync_run,
            workspace_id=await info.context.workspace_id(),
            sync_id=parse_id(id, "id"),
            data=to_body(options),
        )
        return SyncRun.from_row(row)

    @strawberry.mutation(description="Ask a queued or running run to stop.")
    async def cancel_sync_run(self, info: Info, id: strawberry.ID) -> SyncRun | None:
        row = await info.context.call(
            runs.cancel_sync_run,
            workspace_id=await info.context.workspace_id(),
            run_id=parse_id(id, "id"),
        )
        return SyncRun.from_row(row)
