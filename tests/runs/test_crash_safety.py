"""`kill -9` of a worker mid-run: the reaper marks the run, the requeued attempt repairs the
destination exactly, nothing is lost, and resent rows are bounded by the in-flight batch."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from sqlmodel import col, select

from app.queue import deserialize_job, run_job_id
from app.services import runs
from app.services.scheduling import HEARTBEAT_TIMEOUT, reap_lost_runs
from app.settings import Settings
from models import SyncRun
from models.columns import utcnow
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import HIGH_VALUE_IDS, add_customers, as_token, create_world
from tests.runs.test_trigger import hooked_sync
from tests.runs.workers import redis_runtime
from tests.servers import serve_in_thread
from tests.services import REDIS_URL

BATCH = 20
EXTRA = [
    (100 + i, f"m{i}@example.com", "US", 1000.0 + i, "pro", "2024-01-01T00:00:00Z")
    for i in range(160)
]
AUDIENCE = sorted([*HIGH_VALUE_IDS, *(row[0] for row in EXTRA)])


class CountingReceiver(Receiver):
    """Signals once it has acknowledged `after` batches, and keeps every record it got."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.acknowledged = threading.Event()
        self.after = after
        self.records_received = 0

    async def hook(self, request):  # type: ignore[no-untyped-def]
        self.script.append(Scripted(200, delay=0.15))  # each batch takes a moment
        response = await super().hook(request)
        self.records_received += len((await request.json())["records"])
        if self.requests >= self.after:
            self.acknowledged.set()
        return response


@pytest.fixture
def receiver() -> CountingReceiver:
    return CountingReceiver(after=3)


@pytest.fixture
def hook_url(receiver: CountingReceiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_kill_9_mid_run_then_the_next_attempt_repairs_exactly(
    settings: Settings, secret_key: str, receiver: CountingReceiver, hook_url: str
) -> None:
    runtime, env, queue = redis_runtime(settings, secret_key)
    pool = await create_pool(
        RedisSettings.from_dsn(REDIS_URL),
        default_queue_name=queue,
        job_deserializer=deserialize_job,
    )
    worker = await start_worker(env)
    try:
        world = await create_world(runtime)
        add_customers(world, EXTRA)
        sync = await hooked_sync(runtime, world, hook_url, config={"batch_size": BATCH})
        async with as_token(runtime, world.editor_token) as ctx:
            first = await runs.trigger_sync_run(
                ctx, workspace_id=world.workspace_id, sync_id=sync.id
            )
        assert await asyncio.to_thread(receiver.acknowledged.wait, 60)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()

        # The reaper, once the heartbeat is stale, fails the run and queues a new attempt.
        requeued = await reap_lost_runs(
            runtime, now=utcnow() + HEARTBEAT_TIMEOUT + timedelta(seconds=15)
        )
        async with runtime.database.session() as session:
            lost = await session.get(SyncRun, first.id)
        assert lost is not None and lost.status == RunStatus.failed
        assert lost.error == {"code": "worker_lost", "message": "the worker stopped heartbeating"}
        assert len(requeued) == 1
        worker = await start_worker(env)
        job = Job(run_job_id(requeued[0]), pool, _queue_name=queue, _deserializer=deserialize_job)
        await job.result(timeout=60)
        async with runtime.database.session() as session:
            retry = await session.get(SyncRun, requeued[0])
            rows = await session.execute(select(SyncRun).where(col(SyncRun.sync_id) == sync.id))
            assert len(rows.scalars().all()) == 2
        assert retry is not None and retry.status == RunStatus.succeeded and retry.attempt == 2
        assert sorted(int(k) for k in receiver.members) == AUDIENCE  # nothing lost
        # Everything acknowledged before the kill was kept: at most one batch is sent twice.
        assert len(AUDIENCE) <= receiver.records_received <= len(AUDIENCE) + BATCH
        assert retry.succeeded["add"] + (lost.succeeded or {}).get("add", 0) >= len(AUDIENCE)
    finally:
        if worker.returncode is None:
            worker.terminate()
            await worker.wait()
        await pool.delete(queue)
        await pool.aclose()
        await runtime.close()
