"""Sync runs: trigger, cancel, history, events and row outcomes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.context import ServiceContext
from app.errors import Conflict, FieldError, InvalidInput, NotFound
from app.events import publisher
from app.queue import RunQueue
from app.runs import Publish, queued_event, transition_run
from app.services.audit import record_audit
from app.services.lookup import Page, authorize, check_window, get_many_scoped, get_scoped, page
from app.validation import parse_input
from models import AudienceSync, RowResult, SyncRun, SyncRunEvent
from models.enums import ACTIVE_RUN_STATUSES, Role, RunStatus, RunTrigger, SyncStatus
from models.shapes.run import TriggerOptions

log = logging.getLogger("signalsmith.runs")
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


async def list_runs_of_syncs(
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    sync_ids: Sequence[uuid.UUID],
    offset: int = 0,
    limit: int | None = None,
) -> dict[uuid.UUID, Page[SyncRun]]:
    """The same window of runs (newest first) of each of the workspace's syncs among
    `sync_ids`, in two queries whatever their number (for batch loaders)."""
    authorize(ctx, workspace_id)
    check_window(offset, limit)
    scoped = list(await get_many_scoped(ctx.session, AudienceSync, sync_ids, workspace_id))
    if not scoped:
        return {}
    sync_id = col(SyncRun.sync_id)
    totals = dict(
        (
            await ctx.session.execute(
                select(sync_id, func.count()).where(sync_id.in_(scoped)).group_by(sync_id)
            )
        ).all()
    )
    rank = (
        func.row_number()
        .over(partition_by=sync_id, order_by=[col(SyncRun.created_at).desc(), col(SyncRun.id)])
        .label("rank")
    )
    ranked = select(SyncRun, rank).where(sync_id.in_(scoped)).subquery()
    run = aliased(SyncRun, ranked)
    window = select(run).where(ranked.c.rank > offset)
    if limit is not None:
        window = window.where(ranked.c.rank <= offset + limit)
    rows = (await ctx.session.execute(window.order_by(ranked.c.rank))).scalars().all()
    items: dict[uuid.UUID, list[SyncRun]] = {key: [] for key in scoped}
    for row in rows:
        items[row.sync_id].append(row)
    return {
        key: Page(items=items[key], total=int(totals.get(key, 0)), offset=offset) for key in scoped
    }


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
    ctx: ServiceContext,
    *,
    workspace_id: uuid.UUID,
    sync_id: uuid.UUID,
    data: object = None,
    trigger: RunTrigger = RunTrigger.api,
) -> SyncRun:
    """Queue a run of the sync. One active run per sync: while one is queued or running,
    a trigger is a Conflict carrying that run's id (the database enforces it).

    `retry_failed_only` resends just the rows the sync's last refusing run rejected or failed
    (and that are still members); it cannot be combined with `full_resync`."""
    authorize(ctx, workspace_id, Role.editor)
    sync = await get_scoped(ctx.session, AudienceSync, sync_id, workspace_id, "audience sync")
    options = parse_input(TriggerOptions, data if data is not None else {})
    if options.retry_failed_only and options.full_resync:
        raise InvalidInput.field(
            "retry_failed_only",
            "cannot be combined with full_resync (a full resync already resends every row)",
        )
    if sync.status == SyncStatus.draft:
        raise Conflict(f"audience sync {sync.id} is a draft; set its status to active to run it")
    run = SyncRun(
        sync_id=sync.id,
        workspace_id=workspace_id,
        trigger=trigger,
        full_resync=options.full_resync,
        retry_failed_only=options.retry_failed_only,
        dry_run=options.dry_run,
    )
    ctx.session.add(run)
    record_audit(
        ctx,
        workspace_id=workspace_id,
        action="sync_run.trigger",
        target_type=KIND,
        target_id=run.id,
        detail={"sync_id": str(sync.id), **options.model_dump()},
    )
    if not await queue_new_run(
        ctx.session, ctx.queue, run, publish=publisher(ctx.events, workspace_id)
    ):
        raise await _active_run_conflict(ctx, sync_id)
    return run


async def queue_new_run(
    session: AsyncSession, queue: RunQueue, run: SyncRun, *, publish: Publish
) -> bool:
    """Commit `run` with its `queued` event (and whatever else the session holds), publish
    the event and enqueue the run; False, with nothing written, when the sync already has an
    active run or this tick already ran.

    The database is the truth and the queue only wakes a worker: a run whose enqueue fails
    (Redis down) is still queued, and the reaper enqueues it again (`requeue_stranded_runs`).
    """
    session.add(run)
    try:
        await session.flush()
        event = queued_event(run)
        session.add(event)
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    await publish(event)
    try:
        await queue.enqueue(run.id)
    except Exception:
        log.warning("could not enqueue run %s; the reaper will", run.id, exc_info=True)
    return True


async def _active_run_conflict(ctx: ServiceContext, sync_id: uuid.UUID) -> Conflict:
    active = (
        await ctx.session.execute(
            select(SyncRun.id).where(
                SyncRun.sync_id == sync_id, col(SyncRun.status).in_(ACTIVE_RUN_STATUSES)
            )
        )
    ).scalar_one_or_none()
    return Conflict(
        f"audience sync {sync_id} already has an active run {active}",
        [FieldError("run_id", str(active))],
    )


async def cancel_sync_run(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, run_id: uuid.UUID
) -> SyncRun:
    """A queued run is cancelled at once; a running one is asked to stop after its batch."""
    authorize(ctx, workspace_id, Role.editor)
    run = await get_sync_run(ctx, workspace_id=workspace_id, run_id=run_id)
    to = {RunStatus.queued: RunStatus.cancelled, RunStatus.running: RunStatus.cancelling}.get(
        RunStatus(run.status)
    )
    if to is None:
        raise Conflict(
            f"run {run.id} is {run.status}; only queued or running runs can be cancelled"
        )
    record_audit(
        ctx, workspace_id=workspace_id, action="sync_run.cancel", target_type=KIND, target_id=run.id
    )
    return await transition_run(ctx.session, run, to, publish=publisher(ctx.events, workspace_id))
