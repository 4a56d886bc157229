"""Runs: trigger, history, cancel, events and row outcomes."""

from __future__ import annotations

from starlette.responses import Response

from app.services import run_events, runs
from models.shapes.run import RowResultPublic, SyncRunEventPublic, SyncRunPublic
from rest_compat.call import Call
from rest_compat.event_stream import LAST_EVENT_ID, event_stream, resume_after, wants_event_stream
from rest_compat.render import created, ok, present


async def trigger_sync_run(call: Call) -> Response:
    run = await runs.trigger_sync_run(
        call.ctx, workspace_id=call.workspace_id, sync_id=call.path_id("syncId"), data=call.body
    )
    return created(present(SyncRunPublic, run))


async def list_sync_runs(call: Call) -> Response:
    page = await runs.list_sync_runs(
        call.ctx, workspace_id=call.workspace_id, sync_id=call.path_id("syncId"), **call.query
    )
    return ok([present(SyncRunPublic, run) for run in page.items])


async def get_sync_run(call: Call) -> Response:
    run = await runs.get_sync_run(
        call.ctx,
        workspace_id=call.workspace_id,
        sync_id=call.path_id("syncId"),
        run_id=call.path_id("runId"),
    )
    return ok(present(SyncRunPublic, run))


async def cancel_sync_run(call: Call) -> Response:
    run = await runs.cancel_sync_run(
        call.ctx, workspace_id=call.workspace_id, run_id=call.path_id("runId")
    )
    return ok(present(SyncRunPublic, run))


async def list_run_events(call: Call) -> Response:
    if wants_event_stream(call.headers.get("accept")):
        after = resume_after(call.query.get("after", 0), call.headers.get(LAST_EVENT_ID))
        stream = await run_events.follow_run_events(
            call.ctx, workspace_id=call.workspace_id, run_id=call.path_id("runId"), after=after
        )
        return event_stream(stream, call.ctx.settings.ws_keepalive_seconds)
    events = await runs.list_run_events(
        call.ctx, workspace_id=call.workspace_id, run_id=call.path_id("runId"), **call.query
    )
    return ok([present(SyncRunEventPublic, event) for event in events])


async def list_row_results(call: Call) -> Response:
    page = await runs.list_row_results(
        call.ctx, workspace_id=call.workspace_id, run_id=call.path_id("runId"), **call.query
    )
    return ok([present(RowResultPublic, row) for row in page.items])
