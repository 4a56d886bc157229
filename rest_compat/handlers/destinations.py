"""Destinations; only the non-secret part of the config comes back, plus which secrets are set."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.context import ServiceContext
from app.services import destinations
from models import Destination
from models.shapes.catalog import DestinationCheck, DestinationPublic
from rest_compat.call import Call
from rest_compat.render import created, deleted, ok, present


def _public(ctx: ServiceContext, destination: Destination) -> dict[str, Any]:
    config, secret_fields = destinations.destination_public_config(ctx, destination)
    return present(DestinationPublic, destination, config=config, secret_fields=secret_fields)


async def list_destinations(call: Call) -> Response:
    page = await destinations.list_destinations(
        call.ctx, workspace_id=call.workspace_id, **call.query
    )
    return ok([_public(call.ctx, destination) for destination in page.items])


async def create_destination(call: Call) -> Response:
    destination = await destinations.create_destination(
        call.ctx, workspace_id=call.workspace_id, data=call.body
    )
    return created(_public(call.ctx, destination))


async def get_destination(call: Call) -> Response:
    destination = await destinations.get_destination(
        call.ctx, workspace_id=call.workspace_id, destination_id=call.path_id("destinationId")
    )
    return ok(_public(call.ctx, destination))


async def update_destination(call: Call) -> Response:
    destination = await destinations.update_destination(
        call.ctx,
        workspace_id=call.workspace_id,
        destination_id=call.path_id("destinationId"),
        data=call.body,
    )
    return ok(_public(call.ctx, destination))


async def check_destination(call: Call) -> Response:
    await destinations.check_destination(
        call.ctx, workspace_id=call.workspace_id, destination_id=call.path_id("destinationId")
    )
    return ok(DestinationCheck().model_dump(mode="json"))


async def delete_destination(call: Call) -> Response:
    await destinations.delete_destination(
        call.ctx, workspace_id=call.workspace_id, destination_id=call.path_id("destinationId")
    )
    return deleted()
