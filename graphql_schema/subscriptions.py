"""Subscription roots: thin adapters over `app.services.run_events` (replay, then tail)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

import strawberry

from app.services import run_events
from graphql_schema.context import Info
from graphql_schema.scalars import parse_id
from graphql_schema.types.sync_run import SyncRun
from graphql_schema.types.sync_run_event import SyncRunEvent


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The run's stored events after `after`, then live ones, without gaps or "
        "duplicates; completes after the terminal status event."
    )
    async def sync_run_events(
        self, info: Info, run_id: strawberry.ID, after: int | None = None
    ) -> AsyncGenerator[SyncRunEvent, None]:
        stream = await info.context.stream(
            run_events.follow_run_events, run_id=parse_id(run_id, "runId"), after=after or 0
        )
        async with aclosing(stream):
            async for event in stream:
                yield SyncRunEvent.from_event(event)

    @strawberry.subscription(
        description="A snapshot of a run of the workspace whenever one changes."
    )
    async def workspace_run_updates(
        self, info: Info, workspace_id: strawberry.ID | None = None
    ) -> AsyncGenerator[SyncRun, None]:
        workspace = None if workspace_id is None else parse_id(workspace_id, "workspaceId")
        stream = await info.context.stream(run_events.follow_workspace_runs, workspace_id=workspace)
        async with aclosing(stream):
            async for run in stream:
                yield SyncRun.from_row(run)
