"""Audiences."""

from __future__ import annotations

from starlette.responses import Response

from app.services import audiences
from models.shapes.catalog import AudiencePreviewPublic, AudiencePublic
from rest_compat.call import Call
from rest_compat.render import created, deleted, ok, present


async def list_audiences(call: Call) -> Response:
    page = await audiences.list_audiences(call.ctx, workspace_id=call.workspace_id, **call.query)
    return ok([present(AudiencePublic, audience) for audience in page.items])


async def create_audience(call: Call) -> Response:
    audience = await audiences.create_audience(
        call.ctx, workspace_id=call.workspace_id, data=call.body
    )
    return created(present(AudiencePublic, audience))


async def get_audience(call: Call) -> Response:
    audience = await audiences.get_audience(
        call.ctx, workspace_id=call.workspace_id, audience_id=call.path_id("audienceId")
    )
    return ok(present(AudiencePublic, audience))


async def update_audience(call: Call) -> Response:
    audience = await audiences.update_audience(
        call.ctx,
        workspace_id=call.workspace_id,
        audience_id=call.path_id("audienceId"),
        data=call.body,
    )
    return ok(present(AudiencePublic, audience))


async def preview_audience(call: Call) -> Response:
    preview = await audiences.preview_audience(
        call.ctx,
        workspace_id=call.workspace_id,
        audience_id=call.path_id("audienceId"),
        data=call.body,
    )
    return ok(AudiencePreviewPublic.model_validate(preview).model_dump(mode="json"))


async def delete_audience(call: Call) -> Response:
    await audiences.delete_audience(
        call.ctx, workspace_id=call.workspace_id, audience_id=call.path_id("audienceId")
    )
    return deleted()
