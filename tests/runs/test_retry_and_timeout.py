"""Runs end to end: `retry_failed_only` through both transports, the run timeout setting,
the `queued` event of every new run, a run claimed once however often it is enqueued, and
queued runs whose job was lost (or never enqueued) enqueued again by the reaper."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlmodel import col, select

from app.asgi import create_app
from app.queue import InProcessQueue
from app.runtime import Runtime
from app.services import runs
from app.services.scheduling import STRANDED_AFTER, reap_lost_runs
from app.settings import Settings
from models import SyncRun, SyncRunEvent
from models.columns import utcnow
from models.enums import RunStatus
from tests.destinations.receiver import Receiver, Scripted
from tests.factories import HIGH_VALUE_IDS, as_token, create_world
from tests.graphql.client import data, gql
from tests.rest.support import assert_error
from tests.runs.test_trigger import hooked_sync, trigger


async def events_of(runtime: Runtime, run_id: uuid.UUID) -> list[SyncRunEvent]:
    async with runtime.database.session() as session:
        rows = await session.execute(
            select(SyncRunEvent)
            .where(col(SyncRunEvent.run_id) == run_id)
            .order_by(col(SyncRunEvent.seq))
        )
        return list(rows.scalars().all())


async def statuses_of(runtime: Runtime, run_id: uuid.UUID) -> list[str]:
    return [e.payload["status"] for e in await events_of(runtime, run_id) if e.type == "status"]


async def test_retry_failed_only_through_rest_and_graphql(
    local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(local_runtime)
    sync = await hooked_sync(local_runtime, world, hook_url)
    receiver.reject_ids = {"2", "5"}
    first = await trigger(local_runtime, world, sync)
    assert first.status == RunStatus.partial and first.failed["add"] == 2
    receiver.reject_ids = {"5"}
    app = create_app(local_runtime.settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            url = f"/api/v1/workspaces/{world.workspace_id}/audience-syncs/{sync.id}/trigger"
            both = {"retry_failed_only": True, "full_resync": True}
            refused = await client.post(url, json=both, headers=world.headers("editor"))
            assert_error(refused, 422, "retry_failed_only")
            response = await client.post(
                url, json={"retry_failed_only": True}, headers=world.headers("editor")
            )
            assert response.status_code == 201, response.text
            await app.state.runtime.queue.drain()
            rest = (
                await client.get(
                    f"/api/v1/workspaces/{world.workspace_id}/audience-syncs/{sync.id}"
                    f"/runs/{response.json()['id']}",
                    headers=world.headers(),
                )
            ).json()
            # 2 and 5 were refused; 5 is refused again, so the run is partial.
            assert rest["status"] == "partial" and rest["query_size"] == 2
            assert rest["succeeded"] == {"add": 1, "update": 0, "remove": 0}
            assert rest["failed"] == {"add": 1, "update": 0, "remove": 0}
            assert rest["retried_from_previous"] == 2 and rest["unchanged"] == 0
            receiver.reject_ids = set()
            mutation = """mutation($id: ID!) {
              triggerAudienceSync(id: $id, retryFailedOnly: true) { id status }
            }"""
            body = await gql(client, mutation, {"id": str(sync.id)}, token=world.editor_token)
            run_id = data(body)["triggerAudienceSync"]["id"]
            await app.state.runtime.queue.drain()
            query = """query($id: ID!) { syncRun(id: $id) {
              status querySize unchanged retriedFromPrevious succeeded { add }
            } }"""
            graphql = data(await gql(client, query, {"id": run_id}, token=world.viewer_token))
            assert graphql["syncRun"] == {
                "status": "succeeded",
                "querySize": 1,  # only 5 was refused by the last refusing run
                "unchanged": 0,
                "retriedFromPrevious": 1,
                "succeeded": {"add": 1},
            }
    finally:
        await app.state.runtime.close()
    assert sorted(int(k) for k in receiver.members) == HIGH_VALUE_IDS


@pytest.fixture
async def hasty_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        settings.model_copy(update={"allow_private_destinations": True, "run_timeout_seconds": 0.2})
    )
    yield runtime
    await runtime.close()


async def test_the_run_timeout_setting_stops_a_slow_run(
    hasty_runtime: Runtime, local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(hasty_runtime)
    # Two batches in flight at a time: the run stops after them (4 batches of one, 0.3 s each).
    sync = await hooked_sync(
        hasty_runtime, world, hook_url, config={"batch_size": 1, "concurrency": 2}
    )
    receiver.script.extend(Scripted(200, delay=0.3) for _ in range(len(HIGH_VALUE_IDS)))
    stopped = await trigger(hasty_runtime, world, sync)
    assert stopped.status == RunStatus.failed and stopped.error is not None
    assert stopped.error["code"] == "timeout"
    sent = stopped.succeeded["add"]
    assert sent < len(HIGH_VALUE_IDS) and len(receiver.members) == sent == receiver.requests
    assert await statuses_of(hasty_runtime, stopped.id) == ["queued", "running", "failed"]
    rest = await trigger(local_runtime, world, sync)  # the default limit (6 h)
    assert rest.status == RunStatus.succeeded and rest.unchanged == sent
    assert rest.succeeded["add"] == len(HIGH_VALUE_IDS) - sent
    assert sorted(int(k) for k in receiver.members) == HIGH_VALUE_IDS


async def test_a_run_enqueued_twice_runs_once(
    local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(local_runtime)
    sync = await hooked_sync(local_runtime, world, hook_url)
    async with as_token(local_runtime, world.editor_token) as ctx:
        run = await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
    for _ in range(3):
        await local_runtime.queue.enqueue(run.id)  # a stranded-run requeue, a duplicate job …
    assert isinstance(local_runtime.queue, InProcessQueue)
    await local_runtime.queue.drain()
    async with local_runtime.database.session() as session:
        done = await session.get(SyncRun, run.id)
    assert done is not None and done.status == RunStatus.succeeded
    assert receiver.requests == 1 and len(receiver.members) == len(HIGH_VALUE_IDS)
    assert await statuses_of(local_runtime, run.id) == ["queued", "running", "succeeded"]


class RecordingQueue:
    """Remembers what was enqueued; can be made to fail like an unreachable Redis."""

    def __init__(self) -> None:
        self.enqueued: list[uuid.UUID] = []
        self.down = False

    async def enqueue(self, run_id: uuid.UUID) -> None:
        if self.down:
            raise ConnectionError("Redis is away")
        self.enqueued.append(run_id)

    async def close(self) -> None:
        pass


async def test_a_trigger_while_the_queue_is_down_is_enqueued_again_by_the_reaper(
    settings: Settings,
) -> None:
    runtime = Runtime(settings)
    queue = RecordingQueue()
    runtime.queue = queue
    try:
        world = await create_world(runtime)
        sync = await hooked_sync(runtime, world, "https://hooks.example.com/in")
        queue.down = True
        async with as_token(runtime, world.editor_token) as ctx:
            run = await runs.trigger_sync_run(ctx, workspace_id=world.workspace_id, sync_id=sync.id)
        assert run.status == RunStatus.queued and queue.enqueued == []
        [queued] = await events_of(runtime, run.id)
        assert (queued.seq, queued.type, queued.payload["status"]) == (1, "status", "queued")
        queue.down = False
        await reap_lost_runs(runtime)  # too young to be stranded yet
        assert run.id not in queue.enqueued
        await reap_lost_runs(runtime, now=utcnow() + STRANDED_AFTER + timedelta(seconds=1))
        assert run.id in queue.enqueued
    finally:
        await runtime.close()


async def test_a_requeued_attempt_starts_with_its_queued_event(settings: Settings) -> None:
    runtime = Runtime(settings)
    runtime.queue = RecordingQueue()
    try:
        world = await create_world(runtime)
        sync = await hooked_sync(runtime, world, "https://hooks.example.com/in")
        async with runtime.database.session() as session:
            lost = SyncRun(
                sync_id=sync.id,
                workspace_id=world.workspace_id,
                status="running",
                retry_failed_only=True,
                heartbeat_at=utcnow() - timedelta(minutes=5),
            )
            session.add(lost)
            await session.commit()
        requeued = await reap_lost_runs(runtime)
        async with runtime.database.session() as session:
            rows = await session.execute(
                select(SyncRun).where(col(SyncRun.sync_id) == sync.id, col(SyncRun.id) != lost.id)
            )
            [retry] = rows.scalars().all()
        assert retry.id in requeued and retry.attempt == 2 and retry.retry_failed_only
        assert await statuses_of(runtime, lost.id) == ["failed"]
        [event] = await events_of(runtime, retry.id)
        assert event.seq == 1 and event.payload == {
            "status": "queued",
            "from": None,
            "trigger": "manual",
            "attempt": 2,
        }
    finally:
        await runtime.close()
