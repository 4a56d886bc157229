"""Destinations: where audiences go. The config is encrypted at rest and write-only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from app.context import ServiceContext
from app.destinations.base import DestinationError
from app.destinations.config import is_private_host
from app.destinations.registry import build_connector, public_view, secret_fields, spec_for
from app.errors import Conflict, InvalidInput
from app.services.changes import apply_changes, commit_change
from app.services.lookup import Page, authorize, get_many_scoped, get_scoped, is_referenced, page
from app.validation import invalid_from, parse_input
from models import AudienceSync, Destination
from models.enums import DestinationType, Role
from models.shapes.catalog import CATALOG_READ_ONLY_FIELDS, DestinationCreate, DestinationUpdate

KIND = "destination"
#: Seconds a connector's `check()` may take before the check counts as failed.
CHECK_TIMEOUT = 30.0


def _validated_config(
    ctx: ServiceContext, destination_type: DestinationType, config: dict[str, Any]
) -> dict[str, Any]:
    try:
        parsed: BaseModel = spec_for(destination_type).config.model_validate(config)
    except ValidationError as exc:
        raise invalid_from(exc, prefix="config") from None
    clean = parsed.model_dump(exclude_none=True)
    for key in ("url", "base_url"):
        host = urlsplit(str(clean.get(key, ""))).hostname
        if host and not ctx.settings.allow_private_destinations and is_private_host(host):
            raise InvalidInput.field(
                f"config.{key}",
                "private, loopback and link-local addresses are not allowed "
                "(SIGNALSMITH_ALLOW_PRIVATE_DESTINATIONS)",
            )
    return clean


def destination_config(ctx: ServiceContext, destination: Destination) -> dict[str, Any]:
    """The full decrypted config; for the engine, never for a response."""
    return ctx.cipher.decrypt(destination.config_encrypted)


def destination_public_config(
    ctx: ServiceContext, destination: Destination
) -> tuple[dict[str, Any], list[str]]:
    config = destination_config(ctx, destination)
    kind = DestinationType(destination.type)
    return public_view(kind, config), secret_fields(kind, config)


async def list_destinations(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[Destination]:
    authorize(ctx, workspace_id)
    return await page(
        ctx.session,
        Destination,
        Destination.workspace_id == workspace_id,
        order_by=[Destination.created_at, Destination.id],
        offset=offset,
        limit=limit,
    )


async def get_destination(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, destination_id: uuid.UUID
) -> Destination:
    authorize(ctx, workspace_id)
    return await get_scoped(ctx.session, Destination, destination_id, workspace_id, KIND)


async def get_destinations_by_ids(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, destination_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Destination]:
    """The workspace's destinations among `destination_ids`, in one query (for batch loaders)."""
    authorize(ctx, workspace_id)
    return await get_many_scoped(ctx.session, Destination, destination_ids, workspace_id)


async def create_destination(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object
) -> Destination:
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(DestinationCreate, data, read_only=CATALOG_READ_ONLY_FIELDS)
    config = _validated_config(ctx, body.type, body.config)
    destination = Destination(
        workspace_id=workspace_id,
        name=body.name,
        type=body.type.value,
        config_encrypted=ctx.cipher.encrypt(config),
        created_by=ctx.principal.account_id,
    )
    await commit_change(
        ctx, destination, action="destination.create", kind=KIND, detail={"name": destination.name}
    )
    return destination


async def update_destination(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, destination_id: uuid.UUID, data: object
) -> Destination:
    """A new `config` is merged over the stored one, so secrets need not be sent again."""
    authorize(ctx, workspace_id, Role.editor)
    destination = await get_scoped(ctx.session, Destination, destination_id, workspace_id, KIND)
    body = parse_input(DestinationUpdate, data, read_only=(*CATALOG_READ_ONLY_FIELDS, "type"))
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.config is not None:
        merged = {**destination_config(ctx, destination), **body.config}
        config = _validated_config(ctx, DestinationType(destination.type), merged)
        changes["config_encrypted"] = ctx.cipher.encrypt(config)
    fields = apply_changes(destination, changes)
    await commit_change(
        ctx, destination, action="destination.update", kind=KIND, detail={"fields": fields}
    )
    return destination


async def check_destination(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, destination_id: uuid.UUID
) -> None:
    """Build the stored destination's connector and let it test its config and credentials:
    a 422 on `config` with the connector's reason (which never carries credentials) if that
    fails, or if the type has no connector yet. Viewers may check: nothing changes."""
    authorize(ctx, workspace_id)
    destination = await get_scoped(ctx.session, Destination, destination_id, workspace_id, KIND)
    try:
        connector = build_connector(
            DestinationType(destination.type),
            destination_config(ctx, destination),
            allow_private=ctx.settings.allow_private_destinations,
        )
    except DestinationError as exc:
        raise InvalidInput.field("config", str(exc)) from None
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await connector.check()
    except DestinationError as exc:
        raise InvalidInput.field("config", str(exc)) from None
    except TimeoutError:
        raise InvalidInput.field(
            "config", f"the destination did not answer within {CHECK_TIMEOUT:g} seconds"
        ) from None
    finally:
        await connector.close()


async def delete_destination(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, destination_id: uuid.UUID
) -> None:
    authorize(ctx, workspace_id, Role.editor)
    destination = await get_scoped(ctx.session, Destination, destination_id, workspace_id, KIND)
    if await is_referenced(ctx.session, AudienceSync.destination_id, destination.id):
        raise Conflict(f"destination {destination.id} is used by an audience sync")
    await commit_change(ctx, destination, action="destination.delete", kind=KIND, deleted=True)
