"""Sync runs: history, events and row outcomes (read); trigger and cancel arrive with
the run engine and answer 501 until then, after the same checks they will make."""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from app.context import ServiceContext
from app.errors import NotFound, NotImplementedYet
from app.services.lookup import Page, authorize, get_scoped, page
from app.validation import parse_input
from models import AudienceSync, RowResult, SyncRun, SyncRunEvent
from models.enums import Role
from models.shapes.run import TriggerOptions

KIND = "sync run"
MAX_EVENTS = 1000


async def list_sync_runs(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    sync_id: uuid.UUID,
    offset: int = 0,
    limit: int | None = None,
) -> Page[SyncRun]:
    """A sync's runs, newest first."""
    authorize(ctx, workspace_id)
    await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, "audience sync")
    return await page(
        ctx.session,
        SyncRun,
        SyncRun.sync_id == sync_id,
        order_by=[SyncRun.created_at.desc(), SyncRun.id],  # type: ignore[attr-defined]
        offset=offset,
        limit=limit,
    )


async def get_sync_run(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    sync_id: uuid.UUID | None = None,
) -> SyncRun:
    authorize(ctx, workspace_id)
    run = await get_scoped(ctx.session, SyncRun, run_id, workspace_id, KIND)
    if sync_id is not None and run.sync_id != sync_id:
        raise NotFound.of(KIND, run_id)
    return run


async def list_run_events(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, run_id: uuid.UUID, after: int = 0
) -> list[SyncRunEvent]:
    """A run's events with `seq > after`, in order."""
    await get_sync_run(ctx, workspace_id=workspace_id, run_id=run_id)
    rows = await ctx.session.execute(
        select(SyncRunEvent)
        .where(SyncRunEvent.run_id == run_id, col(SyncRunEvent.seq) > after)
        .order_by(col(SyncRunEvent.seq))
        .limit(MAX_EVENTS)
    )
    return list(rows.scalars().all())


async def list_row_results(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    run_id: uuid.UUID,
    status: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Page[RowResult]:
    await get_sync_run(ctx, workspace_id=workspace_id, run_id=run_id)
    where = [RowResult.run_id == run_id]
    if status is not None:
        where.append(RowResult.status == status)
    return await page(
        ctx.session, RowResult, *where, order_by=[RowResult.id], offset=offset, limit=limit
    )


async def trigger_sync_run(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, sync_id: uuid.UUID, data: object = None
) -> SyncRun:
    authorize(ctx, workspace_id, Role.editor)
    await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, "audience sync")
    parse_input(TriggerOptions, data if data is not None else {})
    raise NotImplementedYet("running syncs arrives with the run engine; nothing was queued")


async def cancel_sync_run(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, run_id: uuid.UUID
) -> SyncRun:
    authorize(ctx, workspace_id, Role.editor)
    await get_sync_run(ctx, workspace_id=workspace_id, run_id=run_id)
    raise NotImplementedYet("cancelling runs arrives with the run engine")
