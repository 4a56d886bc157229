"""The scheduler (one run per tick, however many schedulers; a missed tick runs once;
paused syncs do not fire), failing syncs moving to `error`, and the reaper."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from app.queue import InProcessQueue
from app.runtime import Runtime
from app.services import runs, syncs
from app.services.scheduling import HEARTBEAT_TIMEOUT, fire_due_schedules, reap_lost_runs
from app.settings import Settings
from app.sync.outcome import FAILURES_BEFORE_ERROR
from models import AudienceSync, SyncRun
from models.enums import RunStatus, RunTrigger, SyncStatus
from tests.factories import World, as_token, create_sync, create_world

T0 = datetime(2030, 1, 15, 9, 2, tzinfo=UTC)


@pytest.fixture
async def idle_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Queued runs stay queued: the queue's job function does nothing."""
    runtime = Runtime(settings)
    started: list[uuid.UUID] = []

    async def hold(run_id: uuid.UUID) -> None:
        started.append(run_id)

    runtime.queue = InProcessQueue(hold)
    yield runtime
    await runtime.close()


async def runs_of(runtime: Runtime, sync_id: uuid.UUID) -> list[SyncRun]:
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(SyncRun).where(SyncRun.sync_id == sync_id).order_by(col(SyncRun.created_at))
        )
        return list(rows.scalars().all())


async def fire(runtime: Runtime, sync: AudienceSync, now: datetime) -> list[uuid.UUID]:
    """Run one scheduler pass; the runs it queued for `sync` (other tests' syncs share the
    database and may fire too)."""
    mine = {run.id for run in await runs_of(runtime, sync.id)}
    fired = await fire_due_schedules(runtime, now=now)
    return [
        run_id
        for run_id in fired
        if run_id not in mine and run_id in {run.id for run in await runs_of(runtime, sync.id)}
    ]


async def finish(runtime: Runtime, run: SyncRun) -> None:
    async with runtime.database.session() as session:
        current = await session.get(SyncRun, run.id)
        assert current is not None
        from app.runs import transition_run

        await transition_run(session, current, RunStatus.cancelled)


async def test_three_schedulers_fire_each_tick_once(idle_runtime: Runtime, world: World) -> None:
    sync = await create_sync(idle_runtime, world, schedule="*/5 * * * *")
    assert await fire(idle_runtime, sync, T0) == []  # first sight: plans only
    at = T0 + timedelta(minutes=4)  # the 09:05 tick is due
    fired = await asyncio.gather(*(fire(idle_runtime, sync, at) for _ in range(3)))
    made = await runs_of(idle_runtime, sync.id)
    assert sum(len(f) for f in fired) == 1 and len(made) == 1
    assert made[0].trigger == RunTrigger.schedule
    assert made[0].scheduled_for == datetime(2030, 1, 15, 9, 5, tzinfo=UTC)
    assert await fire(idle_runtime, sync, at) == []  # the same tick never again


async def test_missed_ticks_after_downtime_run_once(idle_runtime: Runtime, world: World) -> None:
    sync = await create_sync(idle_runtime, world, schedule="*/5 * * * *")
    await fire(idle_runtime, sync, T0)
    later = T0 + timedelta(hours=3)  # 12:02: 36 ticks missed, the last at 12:00
    assert len(await fire(idle_runtime, sync, later)) == 1
    made = await runs_of(idle_runtime, sync.id)
    assert [r.scheduled_for for r in made] == [datetime(2030, 1, 15, 12, 0, tzinfo=UTC)]
    await finish(idle_runtime, made[0])
    assert await fire(idle_runtime, sync, later + timedelta(minutes=2)) == []
    assert len(await fire(idle_runtime, sync, later + timedelta(minutes=5))) == 1


async def test_paused_syncs_do_not_fire(idle_runtime: Runtime, world: World) -> None:
    sync = await create_sync(idle_runtime, world, schedule="*/5 * * * *", status="paused")
    await fire(idle_runtime, sync, T0)
    assert await fire(idle_runtime, sync, T0 + timedelta(hours=1)) == []
    assert await runs_of(idle_runtime, sync.id) == []
    async with as_token(idle_runtime, world.editor_token) as ctx:
        await syncs.update_audience_sync(
            ctx, workspace_id=world.workspace_id, sync_id=sync.id, data={"status": "active"}
        )
    resumed = T0 + timedelta(hours=1, minutes=1)
    assert await fire(idle_runtime, sync, resumed) == []  # nothing owed on resume
    assert len(await fire(idle_runtime, sync, resumed + timedelta(minutes=5))) == 1


async def test_a_sync_that_keeps_failing_moves_to_error(settings: Settings) -> None:
    runtime = Runtime(settings)
    try:
        world = await create_world(runtime)
        async with as_token(runtime, world.admin_token) as ctx:
            from app.services import destinations

            nowhere = await destinations.create_destination(
                ctx,
                workspace_id=world.workspace_id,
                data={"name": "crm", "type": "iterable", "config": {"token": "t"}},
            )
        sync = await create_sync(runtime, world, destination_id=str(nowhere.id))
        for _ in range(FAILURES_BEFORE_ERROR):
            async with as_token(runtime, world.editor_token) as ctx:
                await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
            assert isinstance(runtime.queue, InProcessQueue)
            await runtime.queue.drain()
        made = await runs_of(runtime, sync.id)
        assert [r.status for r in made] == [RunStatus.failed] * FAILURES_BEFORE_ERROR
        assert made[-1].error and made[-1].error["code"] == "destination_unavailable"
        async with runtime.database.session() as session:
            stored = await session.get(AudienceSync, sync.id)
        assert stored is not None and stored.status == SyncStatus.error
        assert "iterable" in stored.status_error and stored.last_run_id == made[-1].id
    finally:
        await runtime.close()


async def test_the_reaper_fails_lost_runs_and_requeues_them(
    idle_runtime: Runtime, world: World
) -> None:
    sync = await create_sync(idle_runtime, world)
    now = datetime.now(UTC)
    async with idle_runtime.database.session() as session:
        lost = SyncRun(
            sync_id=sync.id,
            workspace_id=world.workspace_id,
            status="running",
            heartbeat_at=now - HEARTBEAT_TIMEOUT - timedelta(seconds=1),
        )
        session.add(lost)
        await session.commit()
    await reap_lost_runs(idle_runtime, now=now)
    made = {r.id: r for r in await runs_of(idle_runtime, sync.id)}
    requeued = [run_id for run_id in made if run_id != lost.id]
    assert made[lost.id].status == RunStatus.failed
    assert made[lost.id].error == {
        "code": "worker_lost",
        "message": "the worker stopped heartbeating",
    }
    assert len(requeued) == 1 and made[requeued[0]].attempt == 2
    assert made[requeued[0]].status == RunStatus.queued
    await reap_lost_runs(idle_runtime, now=now)
    assert len(await runs_of(idle_runtime, sync.id)) == 2  # a queued retry is not reaped
