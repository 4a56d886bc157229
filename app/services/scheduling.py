"""The scheduler's and the reaper's use cases: system actors, no caller to authorize.

Several scheduler processes may run these at once: a tick is claimed by compare-and-set on
the sync's `next_run_at`, and the database's unique `(sync_id, scheduled_for)` and
one-active-run index stop any duplicate that slips through (DESIGN §4, §7). No run stays
`running` without a worker (`reap_lost_runs`), nor `queued` without a job: the queue may lose
one (Redis restarted without persistence, or down when the run was triggered), so the reaper
enqueues old queued runs again; enqueueing is idempotent and a run is claimed only once.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, or_, select

from app.events import publisher
from app.runs import transition_run
from app.runtime import Runtime
from app.schedules import due_tick, next_tick
from app.services.runs import queue_new_run
from app.sync.outcome import apply_run_outcome
from models import AudienceSync, SyncRun
from models.columns import utcnow
from models.enums import RunStatus, RunTrigger, SyncStatus

log = logging.getLogger("signalsmith.scheduler")
#: A running run whose heartbeat is older than this lost its worker.
HEARTBEAT_TIMEOUT = timedelta(seconds=60)
#: A run lost this many times is not requeued again.
MAX_ATTEMPTS = 3
#: A run queued this long may have lost its job; it is enqueued again (a no-op if not).
STRANDED_AFTER = timedelta(seconds=60)
#: Queued runs enqueued again per reaper pass, oldest first.
STRANDED_PER_PASS = 500


async def fire_due_schedules(runtime: Runtime, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Queue one run for each active sync with a due tick; returns the runs queued."""
    now = now or utcnow()
    async with runtime.database.session() as session:
        due = (
            (
                await session.execute(
                    select(AudienceSync).where(
                        col(AudienceSync.schedule).is_not(None),
                        or_(
                            col(AudienceSync.next_run_at).is_(None),
                            col(AudienceSync.next_run_at) <= now,
                        ),
                    )
                )
            )
            .scalars()
            .all()
        )
    fired: list[uuid.UUID] = []
    for sync in due:
        run_id = await _fire(runtime, sync, now)
        if run_id is not None:
            fired.append(run_id)
    return fired


async def _fire(runtime: Runtime, sync: AudienceSync, now: datetime) -> uuid.UUID | None:
    assert sync.schedule is not None
    zone = sync.config.get("timezone")
    claimed = sync.next_run_at
    following = next_tick(sync.schedule, zone, now)
    async with runtime.database.session() as session:
        same_tick = (
            col(AudienceSync.next_run_at).is_(None)
            if claimed is None
            else col(AudienceSync.next_run_at) == claimed
        )
        won = await session.execute(
            update(AudienceSync)
            .where(col(AudienceSync.id) == sync.id, same_tick)
            .values(next_run_at=following)
        )
        if won.rowcount != 1:  # type: ignore[attr-defined]
            await session.rollback()
            return None  # another scheduler claimed this tick
        tick = (
            due_tick(sync.schedule, zone, since=claimed - timedelta(microseconds=1), now=now)
            if claimed is not None
            else None
        )
        if tick is None or sync.status != SyncStatus.active:
            await session.commit()  # first sight of the schedule, or paused: just move on
            return None
        run = SyncRun(
            sync_id=sync.id,
            workspace_id=sync.workspace_id,
            trigger=RunTrigger.schedule,
            scheduled_for=tick,
        )
        queued = await queue_new_run(
            session, runtime.queue, run, publish=publisher(runtime.events, sync.workspace_id)
        )
        return run.id if queued else None


async def reap_lost_runs(runtime: Runtime, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Fail runs whose worker died (`worker_lost`) and requeue them as a new attempt (the
    runs returned); enqueue again the runs queued so long that their job may be lost."""
    now = now or utcnow()
    async with runtime.database.session() as session:
        lost = (
            (
                await session.execute(
                    select(SyncRun).where(
                        col(SyncRun.status).in_((RunStatus.running, RunStatus.cancelling)),
                        col(SyncRun.heartbeat_at) < now - HEARTBEAT_TIMEOUT,
                    )
                )
            )
            .scalars()
            .all()
        )
        requeued: list[uuid.UUID] = []
        for run in lost:
            error = {"code": "worker_lost", "message": "the worker stopped heartbeating"}
            sync = await session.get(AudienceSync, run.sync_id)
            if sync is not None:
                apply_run_outcome(sync, run.id, RunStatus.failed, error)
            cancelling = run.status == RunStatus.cancelling
            await transition_run(
                session,
                run,
                RunStatus.failed,
                error=error,
                publish=publisher(runtime.events, run.workspace_id),
            )
            if cancelling or run.attempt >= MAX_ATTEMPTS or sync is None:
                continue
            retry = SyncRun(
                sync_id=run.sync_id,
                workspace_id=run.workspace_id,
                trigger=run.trigger,
                full_resync=run.full_resync,
                retry_failed_only=run.retry_failed_only,
                dry_run=run.dry_run,
                attempt=run.attempt + 1,
            )
            publish = publisher(runtime.events, run.workspace_id)
            if await queue_new_run(session, runtime.queue, retry, publish=publish):
                requeued.append(retry.id)
    await requeue_stranded_runs(runtime, now=now)
    return requeued


async def requeue_stranded_runs(
    runtime: Runtime, *, now: datetime | None = None
) -> list[uuid.UUID]:
    """Enqueue again the runs queued before `now - STRANDED_AFTER` (returns them). The job
    id is the run id, so a job still waiting in Redis is not duplicated, and `execute_run`
    claims a run once however often it is enqueued."""
    now = now or utcnow()
    async with runtime.database.session() as session:
        stranded = (
            (
                await session.execute(
                    select(SyncRun.id)
                    .where(
                        col(SyncRun.status) == RunStatus.queued,
                        col(SyncRun.created_at) < now - STRANDED_AFTER,
                    )
                    .order_by(col(SyncRun.created_at))
                    .limit(STRANDED_PER_PASS)
                )
            )
            .scalars()
            .all()
        )
    for run_id in stranded:
        try:
            await runtime.queue.enqueue(run_id)
        except Exception:  # the queue is away: the next pass tries again
            log.warning("could not enqueue stranded run %s", run_id, exc_info=True)
            return []
    return list(stranded)
