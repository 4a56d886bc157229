"""Redis killed (-9) and restarted mid-run, on a private Redis server: the run in flight goes
on (the engine needs the database and the destination, not Redis) and ends correctly; the
worker rides out the outage and keeps serving; a follower sees every event up to the terminal
one (from the table, whatever the bus lost); and a run triggered while Redis was away, whose
job never reached the queue, is enqueued again by the reaper and runs."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest
from starlette.requests import Request
from starlette.responses import Response

from app.events import RunEvent
from app.runtime import Runtime
from app.services import run_events, runs
from app.services.scheduling import STRANDED_AFTER, reap_lost_runs
from app.settings import Settings
from models import SyncRun
from models.columns import utcnow
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import HIGH_VALUE_IDS, World, add_customers, as_token, create_world
from tests.runs.test_trigger import hooked_sync
from tests.runs.workers import PrivateRedis, redis_runtime, start_worker, stop_process
from tests.servers import serve_in_thread

BATCH = 20
EXTRA = [
    (100 + i, f"m{i}@example.com", "US", 1000.0 + i, "pro", "2024-01-01T00:00:00Z")
    for i in range(160)
]
AUDIENCE = sorted([*HIGH_VALUE_IDS, *(row[0] for row in EXTRA)])


class PacedReceiver(Receiver):
    """Each batch takes a moment; `at[n]` is set once `n` batches were acknowledged."""

    def __init__(self) -> None:
        super().__init__(secret="hook-secret")
        self.at = {n: threading.Event() for n in (2, 4)}
        self.records = 0
        self.acknowledged = 0  # batches may be in flight together: counted as answered

    async def hook(self, request: Request) -> Response:
        self.script.append(Scripted(200, delay=0.1))
        response = await super().hook(request)
        self.records += len(json.loads(await request.body())["records"])
        self.acknowledged += 1
        if self.acknowledged in self.at:
            self.at[self.acknowledged].set()
        return response


@pytest.fixture
def receiver() -> PacedReceiver:
    return PacedReceiver()


@pytest.fixture
def hook_url(receiver: PacedReceiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


@pytest.fixture
async def redis() -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis()
    await server.start()
    try:
        yield server
    finally:
        await server.kill()


async def follow(runtime: Runtime, world: World, run_id: uuid.UUID) -> list[RunEvent]:
    async with as_token(runtime, world.viewer_token) as ctx:
        stream = await run_events.follow_run_events(
            ctx, workspace_id=world.workspace_id, run_id=run_id
        )
    return [event async for event in stream]


async def finished(runtime: Runtime, run_id: uuid.UUID) -> SyncRun:
    async with runtime.database.session() as session:
        run = await session.get(SyncRun, run_id)
    assert run is not None
    return run


async def test_a_redis_restart_mid_run(
    own_settings: Settings,
    secret_key: str,
    redis: PrivateRedis,
    receiver: PacedReceiver,
    hook_url: str,
) -> None:
    runtime, env, _ = redis_runtime(own_settings, secret_key, redis.url, events_quiet_seconds=0.5)
    other = Receiver(secret="hook-secret")
    worker = await start_worker(env)
    try:
        with serve_in_thread(other.app()) as other_base:
            world = await create_world(runtime)
            add_customers(world, EXTRA)
            sync = await hooked_sync(runtime, world, hook_url, config={"batch_size": BATCH})
            second_sync = await hooked_sync(runtime, world, f"{other_base}/hook")
            async with as_token(runtime, world.editor_token) as ctx:
                run = await runs.trigger_sync_run(
                    ctx, workspace_id=world.workspace_id, sync_id=sync.id
                )
            follower = asyncio.create_task(follow(runtime, world, run.id))
            assert await asyncio.to_thread(receiver.at[2].wait, 60)

            await redis.kill()
            async with as_token(runtime, world.editor_token) as ctx:  # the enqueue fails
                during = await runs.trigger_sync_run(
                    ctx, workspace_id=world.workspace_id, sync_id=second_sync.id
                )
            assert during.status == RunStatus.queued
            # The run goes on without Redis: two more batches are acknowledged meanwhile.
            assert await asyncio.to_thread(receiver.at[4].wait, 60)
            await redis.start()  # the same port, and nothing in it

            events = await asyncio.wait_for(follower, timeout=60)
            done = await finished(runtime, run.id)
            assert done.status == RunStatus.succeeded and done.succeeded["add"] == len(AUDIENCE)
            assert sorted(int(k) for k in receiver.members) == AUDIENCE
            assert receiver.records == len(AUDIENCE)  # nothing was sent twice
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert events[0].payload["status"] == "queued" and events[-1].is_final
            assert events[-1].payload["status"] == "succeeded"

            # The worker is still there; the run whose job was lost is enqueued again.
            assert worker.returncode is None
            assert (await finished(runtime, during.id)).status == RunStatus.queued
            later = utcnow() + STRANDED_AFTER + timedelta(seconds=1)
            await reap_lost_runs(runtime, now=later)
            tail = await asyncio.wait_for(follow(runtime, world, during.id), timeout=60)
            assert [e.payload.get("status") for e in tail if e.type == "status"] == [
                "queued",
                "running",
                "succeeded",
            ]
            assert sorted(int(k) for k in other.members) == AUDIENCE
            assert worker.returncode is None
    finally:
        await stop_process(worker)
        await runtime.close()
