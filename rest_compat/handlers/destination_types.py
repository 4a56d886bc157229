"""The destination-type catalogue: the same for every workspace, for any valid token."""

from __future__ import annotations

from starlette.responses import Response

from app.services import destination_types
from models.shapes.catalog import DestinationTypePublic
from rest_compat.call import Call
from rest_compat.render import ok


async def list_destination_types(call: Call) -> Response:
    types = await destination_types.list_destination_types(call.ctx)
    return ok([DestinationTypePublic.model_validate(t).model_dump(mode="json") for t in types])
