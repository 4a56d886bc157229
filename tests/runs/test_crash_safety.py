"""`kill -9` of a worker at each point of a run: between batches, while the source query runs
(before the first batch), between the destination's acknowledgement of a batch and its
commit, and in the removal phase of a mirror run. Each time the reaper (called with a clock
past the heartbeat limit) fails the run and queues a new attempt, which repairs the
destination exactly: it holds the audience, no member is lost, and the rows sent twice are
at most the batches that were in flight: one batch with `concurrency` 1, at most
`concurrency` batches otherwise (a batch's slot is freed only once it is committed)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import Job
from sqlmodel import col, select
from starlette.requests import Request
from starlette.responses import Response

from app.queue import deserialize_job, run_job_id
from app.runtime import Runtime
from app.services import runs
from app.services.scheduling import HEARTBEAT_TIMEOUT, reap_lost_runs
from app.settings import Settings
from models import AudienceSync, SyncedMember, SyncRun
from models.columns import utcnow
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import HIGH_VALUE_IDS, World, add_customers, as_token, create_world
from tests.pg_activity import until_backends
from tests.runs.pg_source import source_database, table_audience
from tests.runs.test_trigger import hooked_sync
from tests.runs.workers import redis_runtime, start_worker, stop_process
from tests.servers import serve_in_thread
from tests.services import REDIS_URL

BATCH = 20
EXTRA = [
    (100 + i, f"m{i}@example.com", "US", 1000.0 + i, "pro", "2024-01-01T00:00:00Z")
    for i in range(160)
]
AUDIENCE = sorted([*HIGH_VALUE_IDS, *(row[0] for row in EXTRA)])


class CrashReceiver(Receiver):
    """Counts the batches and records of each operation it acknowledged. Once it has applied
    the batch `kill_at = (operation, n)`, it kills `victim` (kill -9) before answering: the
    destination holds the batch, the worker never learns it. Each batch takes a moment."""

    def __init__(self) -> None:
        super().__init__(secret="hook-secret")
        self.victim: int | None = None
        self.kill_at: tuple[str, int] | None = None
        self.killed = threading.Event()
        #: Set once the batch `watch` was acknowledged.
        self.watch: tuple[str, int] | None = None
        self.reached = threading.Event()
        self.batches: Counter[str] = Counter()
        self.records: Counter[str] = Counter()

    async def hook(self, request: Request) -> Response:
        self.script.append(Scripted(200, delay=0.05))
        body = json.loads(await request.body())
        response = await super().hook(request)
        if response.status_code == 200:
            operation = body["operation"]
            self.batches[operation] += 1
            self.records[operation] += len(body["records"])
            if self.victim is not None and self.kill_at == (operation, self.batches[operation]):
                os.kill(self.victim, signal.SIGKILL)
                self.killed.set()
            if self.watch == (operation, self.batches[operation]):
                self.reached.set()
        return response


@pytest.fixture
def receiver() -> CrashReceiver:
    return CrashReceiver()


@pytest.fixture
def hook_url(receiver: CrashReceiver) -> Iterator[str]:
    with serve_in_thread(receiver.app()) as base:
        yield f"{base}/hook"


@dataclass
class Cluster:
    """A runtime and `signalsmith worker` processes on one database and Redis queue."""

    runtime: Runtime
    env: dict[str, str]
    queue: str
    pool: ArqRedis
    workers: list[asyncio.subprocess.Process] = field(default_factory=list)

    async def start_worker(self) -> asyncio.subprocess.Process:
        worker = await start_worker(self.env)
        self.workers.append(worker)
        return worker

    async def finished(self, run_id: uuid.UUID) -> SyncRun:
        job = Job(
            run_job_id(run_id), self.pool, _queue_name=self.queue, _deserializer=deserialize_job
        )
        await job.result(timeout=60)
        return await self.load(run_id)

    async def load(self, run_id: uuid.UUID) -> SyncRun:
        async with self.runtime.database.session() as session:
            run = await session.get(SyncRun, run_id)
        assert run is not None
        return run

    async def trigger(self, world: World, sync: AudienceSync) -> SyncRun:
        async with as_token(self.runtime, world.editor_token) as ctx:
            return await runs.trigger_sync_run(
                ctx, workspace_id=world.workspace_id, sync_id=sync.id
            )

    async def settled(self) -> None:
        """Returns once no other connection to the metadata database is busy. A worker killed
        just after asking to commit leaves the server finishing that commit on its own: on
        PostgreSQL, reading the run and then its held state meanwhile could see one before
        the commit and the other after it. (SQLite's commit is done when the process dies.)"""
        engine = self.runtime.database.engine
        if engine.dialect.name == "postgresql":
            await until_backends(
                engine,
                "state IS DISTINCT FROM 'idle'",
                exist=False,
                never="the killed worker's connections stayed busy",
            )

    async def held(self, sync: AudienceSync) -> list[int]:
        async with self.runtime.database.session() as session:
            rows = await session.execute(
                select(col(SyncedMember.member_key)).where(col(SyncedMember.sync_id) == sync.id)
            )
            return sorted(int(key) for key in rows.scalars().all())

    async def reap_and_repair(self, lost_id: uuid.UUID) -> tuple[SyncRun, SyncRun]:
        """The reaper, once the heartbeat is stale, fails the lost run and queues a new
        attempt; a fresh worker runs it. Returns (lost run, new attempt)."""
        requeued = await reap_lost_runs(
            self.runtime, now=utcnow() + HEARTBEAT_TIMEOUT + timedelta(seconds=15)
        )
        lost = await self.load(lost_id)
        assert lost.status == RunStatus.failed
        assert lost.error == {"code": "worker_lost", "message": "the worker stopped heartbeating"}
        assert len(requeued) == 1
        await self.start_worker()
        retry = await self.finished(requeued[0])
        assert retry.status == RunStatus.succeeded and retry.attempt == lost.attempt + 1
        return lost, retry


@pytest.fixture
async def cluster(own_settings: Settings, secret_key: str) -> AsyncIterator[Cluster]:
    runtime, env, queue = redis_runtime(own_settings, secret_key)
    pool = await create_pool(
        RedisSettings.from_dsn(REDIS_URL),
        default_queue_name=queue,
        job_deserializer=deserialize_job,
    )
    made = Cluster(runtime, env, queue, pool)
    try:
        yield made
    finally:
        for worker in made.workers:
            await stop_process(worker)
        await pool.delete(queue)
        await pool.aclose()
        await runtime.close()


async def crash_world(
    cluster: Cluster, hook_url: str, concurrency: int
) -> tuple[World, AudienceSync]:
    world = await create_world(cluster.runtime)
    add_customers(world, EXTRA)
    config = {"batch_size": BATCH, "concurrency": concurrency}
    sync = await hooked_sync(cluster.runtime, world, hook_url, config=config)
    return world, sync


in_flight = pytest.mark.parametrize("concurrency", [1, 4])


@in_flight
async def test_kill_9_between_batches(
    cluster: Cluster, receiver: CrashReceiver, hook_url: str, concurrency: int
) -> None:
    world, sync = await crash_world(cluster, hook_url, concurrency)
    worker = await cluster.start_worker()
    receiver.watch = ("add", 3)
    first = await cluster.trigger(world, sync)
    assert await asyncio.to_thread(receiver.reached.wait, 60)
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    lost, retry = await cluster.reap_and_repair(first.id)
    assert sorted(int(k) for k in receiver.members) == AUDIENCE == await cluster.held(sync)
    # Everything acknowledged before the kill was kept: at most the batches in flight are
    # sent twice.
    assert len(AUDIENCE) <= receiver.records["add"] <= len(AUDIENCE) + concurrency * BATCH
    assert lost.succeeded["add"] + retry.succeeded["add"] >= len(AUDIENCE)


@in_flight
async def test_kill_9_between_an_acknowledgement_and_its_commit(
    cluster: Cluster, receiver: CrashReceiver, hook_url: str, concurrency: int
) -> None:
    world, sync = await crash_world(cluster, hook_url, concurrency)
    worker = await cluster.start_worker()
    receiver.victim, receiver.kill_at = worker.pid, ("add", 3)
    first = await cluster.trigger(world, sync)
    await asyncio.wait_for(worker.wait(), timeout=60)
    assert receiver.killed.is_set()
    await cluster.settled()
    # The third batch is at the destination but not recorded; of the first two, those
    # committed before the kill are (both with one batch in flight at a time).
    committed = (await cluster.load(first.id)).succeeded["add"]
    assert len(await cluster.held(sync)) == committed and committed % BATCH == 0
    assert committed == 2 * BATCH if concurrency == 1 else committed <= 2 * BATCH
    assert 3 * BATCH <= len(receiver.members) <= (2 + concurrency) * BATCH
    _, retry = await cluster.reap_and_repair(first.id)
    assert sorted(int(k) for k in receiver.members) == AUDIENCE == await cluster.held(sync)
    assert retry.succeeded["add"] == len(AUDIENCE) - committed and retry.unchanged == committed
    resent = receiver.records["add"] - len(AUDIENCE)
    assert resent == BATCH if concurrency == 1 else BATCH <= resent <= concurrency * BATCH


@in_flight
async def test_kill_9_in_the_removal_phase_of_a_mirror_run(
    cluster: Cluster, receiver: CrashReceiver, hook_url: str, concurrency: int
) -> None:
    world, sync = await crash_world(cluster, hook_url, concurrency)
    worker = await cluster.start_worker()
    first = await cluster.finished((await cluster.trigger(world, sync)).id)
    assert first.status == RunStatus.succeeded and first.succeeded["add"] == len(AUDIENCE)
    leaving = [row[0] for row in EXTRA[:60]]  # fewer than half: the removal guard lets it be
    with sqlite3.connect(world.source_path) as connection:
        connection.executemany(
            "UPDATE customers SET lifetime_value = 10 WHERE id = ?", [(k,) for k in leaving]
        )
    connection.close()
    staying = [k for k in AUDIENCE if k not in leaving]
    receiver.victim, receiver.kill_at = worker.pid, ("remove", 2)
    second = await cluster.trigger(world, sync)
    await asyncio.wait_for(worker.wait(), timeout=60)
    assert receiver.killed.is_set()
    await cluster.settled()
    committed = (await cluster.load(second.id)).succeeded["remove"]
    assert committed == BATCH if concurrency == 1 else committed <= BATCH
    _, retry = await cluster.reap_and_repair(second.id)
    assert sorted(int(k) for k in receiver.members) == staying == await cluster.held(sync)
    assert retry.succeeded == {"add": 0, "update": 0, "remove": len(leaving) - committed}
    resent = receiver.records["remove"] - len(leaving)  # the batches in flight, again
    assert resent == BATCH if concurrency == 1 else BATCH <= resent <= concurrency * BATCH
    assert receiver.records["add"] == len(AUDIENCE)  # nothing else was sent again


@pytest.fixture
async def postgres_customers() -> AsyncIterator[str]:
    """A PostgreSQL database of the test's own holding the customers (and the audience)."""

    async def fill(connection: asyncpg.Connection) -> None:
        await connection.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, lifetime_value FLOAT)"
        )
        await connection.executemany(
            "INSERT INTO customers VALUES ($1, $2, $3)",
            [(k, f"c{k}@example.com", 900.0) for k in AUDIENCE] + [(7, "low@x", 1.0)],
        )

    async with source_database("signalsmith_crash_source", fill) as url:
        yield url


async def postgres_audience(cluster: Cluster, world: World, url: str) -> uuid.UUID:
    return await table_audience(
        cluster.runtime,
        world,
        url,
        table="customers",
        filter={"column": "lifetime_value", "op": "gte", "value": 500},
    )


async def source_query_waits(url: str) -> None:
    """Returns once a source query of ours on the database at `url` waits for a lock (asked
    outside any transaction: inside one, pg_stat_activity is a frozen snapshot)."""
    connection = await asyncpg.connect(url)
    try:
        for _ in range(1200):
            if await connection.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'signalsmith' AND wait_event_type = 'Lock'"
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError("the run's source query never reached the lock")


async def test_kill_9_while_the_source_query_runs(
    cluster: Cluster, receiver: CrashReceiver, hook_url: str, postgres_customers: str
) -> None:
    world = await create_world(cluster.runtime)
    audience_id = await postgres_audience(cluster, world, postgres_customers)
    sync = await hooked_sync(
        cluster.runtime,
        world,
        hook_url,
        audience_id=str(audience_id),
        config={"batch_size": BATCH},
    )
    blocker = await asyncpg.connect(postgres_customers)
    try:
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        worker = await cluster.start_worker()
        first = await cluster.trigger(world, sync)
        await source_query_waits(postgres_customers)
        worker.send_signal(signal.SIGKILL)
        await worker.wait()
        await lock.rollback()
    finally:
        await blocker.close()
    killed = await cluster.load(first.id)
    assert killed.status == RunStatus.running and killed.phase == "querying"
    assert receiver.requests == 0 and await cluster.held(sync) == []
    lost, retry = await cluster.reap_and_repair(first.id)
    assert sorted(int(k) for k in receiver.members) == AUDIENCE == await cluster.held(sync)
    assert receiver.records["add"] == len(AUDIENCE)  # nothing was in flight: nothing twice
    assert retry.query_size == len(AUDIENCE) and lost.succeeded["add"] == 0
