"""A sync run (DESIGN §4): status, phase, the plan and its outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from graphql_schema.context import Info
from graphql_schema.scalars import to_id
from graphql_schema.types.enums import RunPhase, RunStatus, RunTrigger
from models import SyncRun as SyncRunRow

if TYPE_CHECKING:
    from graphql_schema.types.audience_sync import AudienceSync


@strawberry.type(description="Rows per operation.")
class RunCounts:
    add: int
    update: int
    remove: int

    @classmethod
    def from_dict(cls, counts: dict[str, int]) -> RunCounts:
        return cls(
            add=counts.get("add", 0), update=counts.get("update", 0), remove=counts.get("remove", 0)
        )


@strawberry.type
class RunError:
    code: str
    message: str


@strawberry.type(description="One execution of an audience sync.")
class SyncRun:
    id: strawberry.ID
    sync_id: strawberry.ID
    workspace_id: strawberry.ID
    status: RunStatus
    phase: RunPhase | None
    trigger: RunTrigger
    full_resync: bool
    dry_run: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    query_size: int
    invalid: int
    planned: RunCounts
    succeeded: RunCounts
    failed: RunCounts
    unchanged: int
    retried_from_previous: int
    progress: float = strawberry.field(description="From 0 to 1.")
    error: RunError | None

    @strawberry.field(description="The sync this run belongs to.")
    async def sync(
        self, info: Info
    ) -> Annotated[AudienceSync, strawberry.lazy("graphql_schema.types.audience_sync")]:
        from graphql_schema.types.audience_sync import AudienceSync  # the types refer to each other

        return AudienceSync.from_row(await info.context.loaders.sync.load(uuid.UUID(self.sync_id)))

    @classmethod
    def from_row(cls, row: SyncRunRow) -> SyncRun:
        return cls(
            id=to_id(row.id),
            sync_id=to_id(row.sync_id),
            workspace_id=to_id(row.workspace_id),
            status=RunStatus(row.status),
            phase=None if row.phase is None else RunPhase(row.phase),
            trigger=RunTrigger(row.trigger),
            full_resync=row.full_resync,
            dry_run=row.dry_run,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            query_size=row.query_size,
            invalid=row.invalid,
            planned=RunCounts.from_dict(row.planned),
            succeeded=RunCounts.from_dict(row.succeeded),
            failed=RunCounts.from_dict(row.failed),
            unchanged=row.unchanged,
            retried_from_previous=row.retried_from_previous,
            progress=row.progress,
            error=None
            if row.error is None
            else RunError(code=str(row.error["code"]), message=str(row.error["message"])),
        )
