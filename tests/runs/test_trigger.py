"""Triggering runs end to end: the real source, the real engine, a real webhook receiver;
one active run per sync under a burst of triggers; cancel; draft syncs do not run."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from arq.jobs import Job

from app.asgi import create_app
from app.errors import Conflict
from app.queue import InProcessQueue, deserialize_job, run_job_id
from app.runtime import Runtime
from app.services import destinations, runs, syncs
from app.settings import Settings
from models import AudienceSync, SyncRun
from models.enums import RunStatus
from tests.destinations.receiver import Receiver
from tests.factories import HIGH_VALUE_IDS, World, add_customers, as_token, create_world
from tests.runs.workers import redis_runtime
from tests.services import REDIS_URL, require_reachable, unique_name

MAPPING = [
    {"source_column": "id", "destination_field": "id"},
    {"source_column": "email", "destination_field": "email"},
]


async def hooked_sync(
    runtime: Runtime, world: World, url: str, **overrides: object
) -> AudienceSync:
    async with as_token(runtime, world.admin_token) as ctx:
        hook = await destinations.create_destination(
            ctx,
            workspace_id=world.workspace_id,
            data={
                "name": "local",
                "type": "webhook",
                "config": {"url": url, "secret": "hook-secret"},
            },
        )
        return await syncs.create_audience_sync(
            ctx,
            workspace_id=world.workspace_id,
            data=world.sync_body(
                destination_id=str(hook.id), **{"field_mapping": MAPPING, **overrides}
            ),
        )


async def trigger(runtime: Runtime, world: World, sync: AudienceSync, **options: bool) -> SyncRun:
    async with as_token(runtime, world.editor_token) as ctx:
        run = await runs.trigger_sync_run(
            ctx, workspace_id=world.workspace_id, sync_id=sync.id, data=options
        )
    assert isinstance(runtime.queue, InProcessQueue)
    await runtime.queue.drain()
    async with runtime.database.session() as session:
        finished = await session.get(SyncRun, run.id)
        assert finished is not None
        return finished


async def test_a_triggered_run_puts_the_audience_in_the_destination(
    local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(local_runtime)
    sync = await hooked_sync(local_runtime, world, hook_url)
    first = await trigger(local_runtime, world, sync)
    assert first.status == RunStatus.succeeded
    assert sorted(int(k) for k in receiver.members) == HIGH_VALUE_IDS
    assert first.query_size == 4 and first.succeeded["add"] == 4 and first.trigger == "api"
    add_customers(world, [(8, "gus@example.com", "US", 900.0, "pro", "2024-01-01T00:00:00Z")])
    second = await trigger(local_runtime, world, sync)
    assert second.succeeded == {"add": 1, "update": 0, "remove": 0} and second.unchanged == 4
    assert sorted(int(k) for k in receiver.members) == [*HIGH_VALUE_IDS, 8]
    async with local_runtime.database.session() as session:
        stored = await session.get(AudienceSync, sync.id)
        assert stored is not None and stored.last_run_id == second.id
        assert stored.last_synced_at is not None
    dry = await trigger(local_runtime, world, sync, dry_run=True, full_resync=True)
    assert dry.dry_run and dry.planned["update"] == 5 and receiver.requests == 2


async def test_rest_trigger_answers_201_with_the_run(
    local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(local_runtime)
    sync = await hooked_sync(local_runtime, world, hook_url)
    app = create_app(local_runtime.settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            base = f"/api/v1/workspaces/{world.workspace_id}/audience-syncs/{sync.id}"
            response = await client.post(f"{base}/trigger", headers=world.headers("editor"))
            assert response.status_code == 201, response.text
            run = response.json()
            assert run["status"] == "queued" and run["sync_id"] == str(sync.id)
            await app.state.runtime.queue.drain()
            done = (await client.get(f"{base}/runs/{run['id']}", headers=world.headers())).json()
            assert done["status"] in ("succeeded", "partial") and done["finished_at"]
            listed = (await client.get(f"{base}/runs", headers=world.headers())).json()
            assert [r["id"] for r in listed] == [run["id"]]
            events = (
                await client.get(
                    f"/api/v1/workspaces/{world.workspace_id}/runs/{run['id']}/events",
                    headers=world.headers(),
                )
            ).json()
            statuses = [e["payload"]["status"] for e in events if e["type"] == "status"]
            assert statuses == ["queued", "running", done["status"]]
            assert events[0]["seq"] == 1 and events[0]["payload"]["trigger"] == "api"
    finally:
        await app.state.runtime.close()


@pytest.fixture
async def queued_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime whose runs wait in a real Redis queue that no worker drains."""
    require_reachable("Redis", REDIS_URL)
    runtime = Runtime(
        settings.model_copy(
            update={"redis_url": REDIS_URL, "queue_name": unique_name("signalsmith:test")}
        )
    )
    yield runtime
    await runtime.close()


async def test_a_burst_of_triggers_makes_exactly_one_run(queued_runtime: Runtime) -> None:
    world = await create_world(queued_runtime)
    sync = await hooked_sync(queued_runtime, world, "https://hooks.example.com/in")

    async def one() -> SyncRun | Conflict:
        async with as_token(queued_runtime, world.editor_token) as ctx:
            try:
                return await runs.trigger_sync_run(
                    ctx, workspace_id=world.workspace_id, sync_id=sync.id
                )
            except Conflict as conflict:
                return conflict

    outcomes = await asyncio.gather(*(one() for _ in range(50)))
    made = [o for o in outcomes if isinstance(o, SyncRun)]
    refused = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(made) == 1 and len(refused) == 49
    assert {c.details[0].message for c in refused} == {str(made[0].id)}
    async with as_token(queued_runtime, world.editor_token) as ctx:
        cancelled = await runs.cancel_sync_run(
            ctx, workspace_id=world.workspace_id, run_id=made[0].id
        )
        assert cancelled.status == RunStatus.cancelled
        again = await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
        assert again.id != made[0].id and again.status == RunStatus.queued
        with pytest.raises(Conflict):
            await runs.cancel_sync_run(ctx, workspace_id=world.workspace_id, run_id=made[0].id)


async def test_a_draft_sync_cannot_run(local_runtime: Runtime) -> None:
    world = await create_world(local_runtime)
    sync = await hooked_sync(local_runtime, world, "https://hooks.example.com/in", status="draft")
    async with as_token(local_runtime, world.editor_token) as ctx:
        with pytest.raises(Conflict, match="draft"):
            await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)


async def test_a_worker_process_executes_triggered_runs(
    settings: Settings, secret_key: str, receiver: Receiver, hook_url: str
) -> None:
    runtime, env, queue = redis_runtime(settings, secret_key)
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    pool = await create_pool(
        RedisSettings.from_dsn(REDIS_URL),
        default_queue_name=queue,
        job_deserializer=deserialize_job,
    )
    try:
        world = await create_world(runtime)
        sync = await hooked_sync(runtime, world, hook_url)
        async with as_token(runtime, world.editor_token) as ctx:
            run = await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
        job = Job(run_job_id(run.id), pool, _queue_name=queue, _deserializer=deserialize_job)
        await job.result(timeout=60)
        async with runtime.database.session() as session:
            done = await session.get(SyncRun, run.id)
        assert done is not None and done.status == RunStatus.succeeded
        assert sorted(int(k) for k in receiver.members) == HIGH_VALUE_IDS
    finally:
        worker.terminate()
        await asyncio.wait_for(worker.wait(), timeout=20)
        await pool.delete(queue)
        await pool.aclose()
        await runtime.close()
