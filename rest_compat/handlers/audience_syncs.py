"""The documented audience-sync endpoints (list, create, get, update, delete)."""

from __future__ import annotations

from starlette.responses import Response

from app.services import syncs
from models.shapes.audience_sync import AudienceSyncPublic
from rest_compat.call import Call
from rest_compat.render import created, deleted, ok, present


async def list_audience_syncs(call: Call) -> Response:
    page = await syncs.list_audience_syncs(call.ctx, workspace_id=call.workspace_id, **call.query)
    return ok([present(AudienceSyncPublic, sync) for sync in page.items])


async def create_audience_sync(call: Call) -> Response:
    sync = await syncs.create_audience_sync(
        call.ctx, workspace_id=call.workspace_id, data=call.body
    )
    return created(present(AudienceSyncPublic, sync))


async def get_audience_sync(call: Call) -> Response:
    sync = await syncs.get_audience_sync(
        call.ctx, workspace_id=call.workspace_id, sync_id=call.path_id("syncId")
    )
    return ok(present(AudienceSyncPublic, sync))


async def update_audience_sync(call: Call) -> Response:
    sync = await syncs.update_audience_sync(
        call.ctx, workspace_id=call.workspace_id, sync_id=call.path_id("syncId"), data=call.body
    )
    return ok(present(AudienceSyncPublic, sync))


async def delete_audience_sync(call: Call) -> Response:
    await syncs.delete_audience_sync(
        call.ctx, workspace_id=call.workspace_id, sync_id=call.path_id("syncId")
    )
    return deleted()
