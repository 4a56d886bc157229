"""Sources; the config comes back with its password hidden."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.context import ServiceContext
from app.services import sources
from models import Source
from models.shapes.catalog import SourceCheck, SourcePublic
from rest_compat.call import Call
from rest_compat.render import created, deleted, ok, present


def _public(ctx: ServiceContext, source: Source) -> dict[str, Any]:
    return present(SourcePublic, source, config=sources.public_config(ctx, source))


async def list_sources(call: Call) -> Response:
    page = await sources.list_sources(call.ctx, workspace_id=call.workspace_id, **call.query)
    return ok([_public(call.ctx, source) for source in page.items])


async def create_source(call: Call) -> Response:
    source = await sources.create_source(call.ctx, workspace_id=call.workspace_id, data=call.body)
    return created(_public(call.ctx, source))


async def get_source(call: Call) -> Response:
    source = await sources.get_source(
        call.ctx, workspace_id=call.workspace_id, source_id=call.path_id("sourceId")
    )
    return ok(_public(call.ctx, source))


async def update_source(call: Call) -> Response:
    source = await sources.update_source(
        call.ctx, workspace_id=call.workspace_id, source_id=call.path_id("sourceId"), data=call.body
    )
    return ok(_public(call.ctx, source))


async def check_source(call: Call) -> Response:
    await sources.check_source(
        call.ctx, workspace_id=call.workspace_id, source_id=call.path_id("sourceId")
    )
    return ok(SourceCheck().model_dump(mode="json"))


async def delete_source(call: Call) -> Response:
    await sources.delete_source(
        call.ctx, workspace_id=call.workspace_id, source_id=call.path_id("sourceId")
    )
    return deleted()
