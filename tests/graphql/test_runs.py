"""Runs through GraphQL: history, the run object (DESIGN §4), trigger and cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.queue import InProcessQueue
from app.runs import transition_run
from app.runtime import Runtime
from models import AudienceSync, SyncRun
from models.enums import RunStatus
from tests.factories import World, create_sync, table_counts
from tests.graphql.client import data, error_codes, gql

RUN_FIELDS = """
    id syncId workspaceId status phase trigger fullResync dryRun createdAt startedAt
    finishedAt querySize invalid planned { add update remove }
    succeeded { add update remove } failed { add update remove } unchanged
    retriedFromPrevious progress error { code message }
"""


async def add_run(runtime: Runtime, sync: AudienceSync, **values: Any) -> SyncRun:
    """A stored run, as the run engine would leave it."""
    run = SyncRun(sync_id=sync.id, workspace_id=sync.workspace_id, **values)
    async with runtime.database.session() as session:
        session.add(run)
        await session.commit()
    return run


async def test_run_object_and_history(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    old = await add_run(
        runtime,
        sync,
        status=RunStatus.partial,
        created_at=start,
        started_at=start,
        finished_at=start + timedelta(minutes=2),
        query_size=10,
        invalid=1,
        planned={"add": 6, "update": 1, "remove": 2},
        succeeded={"add": 5, "update": 1, "remove": 2},
        failed={"add": 1, "update": 0, "remove": 0},
        unchanged=2,
        progress=1.0,
        error={"code": "rows_rejected", "message": "1 row rejected"},
    )
    new = await add_run(runtime, sync, status=RunStatus.running, phase="syncing", progress=0.5)

    body = data(
        await gql(
            client,
            f"""query($sync: ID!, $run: ID!) {{
              syncRuns(syncId: $sync) {{ totalCount edges {{ node {{ id status }} }} }}
              syncRun(id: $run) {{ {RUN_FIELDS} sync {{ id name }} }}
              audienceSync(id: $sync) {{
                runs(first: 1) {{ totalCount edges {{ node {{ id }} }} }}
              }}
            }}""",
            {"sync": str(sync.id), "run": str(old.id)},
            token=world.viewer_token,
        )
    )
    assert body["syncRuns"]["totalCount"] == 2
    assert [e["node"] for e in body["syncRuns"]["edges"]] == [
        {"id": str(new.id), "status": "running"},
        {"id": str(old.id), "status": "partial"},
    ]
    assert body["syncRun"] == {
        "id": str(old.id),
        "syncId": str(sync.id),
        "workspaceId": str(world.workspace_id),
        "status": "partial",
        "phase": None,
        "trigger": "manual",
        "fullResync": False,
        "dryRun": False,
        "createdAt": "2024-05-01T12:00:00Z",
        "startedAt": "2024-05-01T12:00:00Z",
        "finishedAt": "2024-05-01T12:02:00Z",
        "querySize": 10,
        "invalid": 1,
        "planned": {"add": 6, "update": 1, "remove": 2},
        "succeeded": {"add": 5, "update": 1, "remove": 2},
        "failed": {"add": 1, "update": 0, "remove": 0},
        "unchanged": 2,
        "retriedFromPrevious": 0,
        "progress": 1.0,
        "error": {"code": "rows_rejected", "message": "1 row rejected"},
        "sync": {"id": str(sync.id), "name": sync.name},
    }
    runs = body["audienceSync"]["runs"]
    assert runs["totalCount"] == 2 and runs["edges"] == [{"node": {"id": str(new.id)}}]


async def test_trigger_queues_a_run_and_a_second_one_conflicts(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    active = await add_run(runtime, sync, status=RunStatus.running)
    trigger = """mutation($id: ID!) {
      triggerAudienceSync(id: $id, fullResync: true, dryRun: true) { id status fullResync dryRun }
    }"""
    before = await table_counts(runtime)
    busy = await gql(client, trigger, {"id": str(sync.id)}, token=world.editor_token)
    assert error_codes(busy) == ["CONFLICT"] and str(active.id) in str(busy["errors"])
    assert await table_counts(runtime) == before
    cancel = "mutation($id: ID!) { cancelSyncRun(id: $id) { id status } }"
    body = await gql(client, cancel, {"id": str(active.id)}, token=world.editor_token)
    assert body["data"]["cancelSyncRun"] == {"id": str(active.id), "status": "cancelling"}
    await finish_run(runtime, active.id)
    body = await gql(client, trigger, {"id": str(sync.id)}, token=world.editor_token)
    run = body["data"]["triggerAudienceSync"]
    assert run["status"] == "queued" and run["fullResync"] and run["dryRun"]
    assert isinstance(runtime.queue, InProcessQueue)
    await runtime.queue.drain()


async def finish_run(runtime: Runtime, run_id: object) -> None:
    async with runtime.database.session() as session:
        run = await session.get(SyncRun, run_id)
        assert run is not None
        await transition_run(session, run, RunStatus.cancelled)


async def test_viewer_cannot_trigger_or_cancel(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    run = await add_run(runtime, sync, status=RunStatus.queued)
    before = await table_counts(runtime)
    body = await gql(
        client,
        """mutation($sync: ID!, $run: ID!) {
          triggerAudienceSync(id: $sync) { id }
          cancelSyncRun(id: $run) { id }
        }""",
        {"sync": str(sync.id), "run": str(run.id)},
        token=world.viewer_token,
    )
    assert error_codes(body) == ["FORBIDDEN", "FORBIDDEN"]
    assert await table_counts(runtime) == before


async def test_cancel_checks_the_run(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    run = await add_run(runtime, sync, status=RunStatus.succeeded)
    cancel = "mutation($id: ID!) { cancelSyncRun(id: $id) { id status } }"
    body = await gql(client, cancel, {"id": str(run.id)}, token=world.editor_token)
    assert error_codes(body) == ["CONFLICT"]
    missing = await gql(client, cancel, {"id": str(sync.id)}, token=world.editor_token)
    assert error_codes(missing) == ["NOT_FOUND"]


async def test_deleting_a_sync_with_an_active_run_is_a_conflict(
    client: httpx.AsyncClient, runtime: Runtime, world: World
) -> None:
    sync = await create_sync(runtime, world)
    run = await add_run(runtime, sync, status=RunStatus.queued)
    before = await table_counts(runtime)
    body = await gql(
        client,
        "mutation($id: ID!) { deleteAudienceSync(id: $id) }",
        {"id": str(sync.id)},
        token=world.admin_token,
    )
    assert error_codes(body) == ["CONFLICT"]
    assert str(run.id) in body["errors"][0]["message"]
    assert await table_counts(runtime) == before
