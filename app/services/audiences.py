"""Audiences: a filter over a parent model. Stored and checked structurally here; the
filter compiler, previews and split groups arrive with the audiences engine."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete

from app.context import ServiceContext
from app.errors import Conflict, NotImplementedYet
from app.services.changes import apply_changes, commit_change
from app.services.lookup import (
    Page,
    authorize,
    get_many_scoped,
    get_scoped,
    is_referenced,
    page,
    reference_in_workspace,
)
from app.validation import parse_input
from models import Audience, AudienceSync, ParentModel, SplitGroup
from models.enums import Role
from models.shapes.catalog import CATALOG_READ_ONLY_FIELDS, AudienceCreate, AudienceUpdate

KIND = "audience"


@dataclass(frozen=True)
class SplitGroupSize:
    id: uuid.UUID
    name: str
    size: int


@dataclass(frozen=True)
class AudiencePreview:
    """How many members an audience has now, a small sample, and each split group's size."""

    size: int
    sample: list[dict[str, Any]]
    split_groups: list[SplitGroupSize]


async def list_audiences(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[Audience]:
    authorize(ctx, workspace_id)
    return await page(
        ctx.session,
        Audience,
        Audience.workspace_id == workspace_id,
        order_by=[Audience.created_at, Audience.id],
        offset=offset,
        limit=limit,
    )


async def get_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID
) -> Audience:
    authorize(ctx, workspace_id)
    return await get_scoped(ctx.session, Audience, audience_id, workspace_id, KIND)


async def get_audiences_by_ids(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Audience]:
    """The workspace's audiences among `audience_ids`, in one query (for batch loaders)."""
    authorize(ctx, workspace_id)
    return await get_many_scoped(ctx.session, Audience, audience_ids, workspace_id)


async def preview_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID
) -> AudiencePreview:
    """Compute the audience's size and a sample on its source (DESIGN §3.2, §6)."""
    await get_audience(ctx, workspace_id=workspace_id, audience_id=audience_id)
    raise NotImplementedYet("audience previews arrive with the audiences engine")


async def create_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object
) -> Audience:
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(AudienceCreate, data, read_only=CATALOG_READ_ONLY_FIELDS)
    await reference_in_workspace(
        ctx.session, ParentModel, body.model_id, workspace_id, "model_id", "model"
    )
    audience = Audience(
        workspace_id=workspace_id,
        model_id=body.model_id,
        name=body.name,
        description=body.description,
        filter=body.filter,
        split_salt=secrets.token_hex(8),
        created_by=ctx.principal.account_id,
    )
    await commit_change(
        ctx, audience, action="audience.create", kind=KIND, detail={"name": audience.name}
    )
    return audience


async def update_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID, data: object
) -> Audience:
    authorize(ctx, workspace_id, Role.editor)
    audience = await get_scoped(ctx.session, Audience, audience_id, workspace_id, KIND)
    body = parse_input(AudienceUpdate, data, read_only=(*CATALOG_READ_ONLY_FIELDS, "model_id"))
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    fields = apply_changes(audience, changes)
    await commit_change(
        ctx, audience, action="audience.update", kind=KIND, detail={"fields": fields}
    )
    return audience


async def delete_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID
) -> None:
    authorize(ctx, workspace_id, Role.editor)
    audience = await get_scoped(ctx.session, Audience, audience_id, workspace_id, KIND)
    if await is_referenced(ctx.session, AudienceSync.audience_id, audience.id):
        raise Conflict(f"audience {audience.id} is used by an audience sync; delete the sync first")
    await ctx.session.execute(delete(SplitGroup).where(SplitGroup.audience_id == audience.id))  # type: ignore[arg-type]
    await commit_change(ctx, audience, action="audience.delete", kind=KIND, deleted=True)
