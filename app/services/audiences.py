"""Audiences: a filter over a parent model (DESIGN §6). A filter is type-checked against the
model's columns before it is stored; previews are computed on the source."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import delete

from app.context import ServiceContext
from app.errors import Conflict
from app.services.audience_queries import audience_referring_to, check_filter, load_audience
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
from app.services.sources import open_stored_source
from app.sources.membership import count_split_groups
from app.validation import parse_input
from models import Audience, AudienceSync, ParentModel, SplitGroup
from models.enums import Role
from models.shapes.catalog import (
    CATALOG_READ_ONLY_FIELDS,
    AudienceCreate,
    AudiencePreviewOptions,
    AudienceUpdate,
)

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
    ctx: ServiceContext, *, workspace_id: uuid.UUID, audience_id: uuid.UUID, data: object = None
) -> AudiencePreview:
    """Compute the audience's size, a sample (at most 100 members in key order, the key and
    `columns`, default all) and each split group's size on its source (DESIGN §3.2, §6).

    `data` is the optional `{"columns": [...]}`; an unknown column is a 422 naming `columns`.
    """
    audience = await get_audience(ctx, workspace_id=workspace_id, audience_id=audience_id)
    options = parse_input(AudiencePreviewOptions, {} if data is None else data)
    stored = await load_audience(ctx.session, audience)
    sample_query = stored.query.sample(options.columns)
    async with open_stored_source(ctx.settings, ctx.cipher, stored.source) as connection:
        size = (await connection.fetch(stored.query.count())).rows[0][0]
        fetched = await connection.fetch(sample_query)
        counts = {}
        if stored.layout is not None:
            counts = await count_split_groups(
                connection, stored.query, salt=audience.split_salt, layout=stored.layout
            )
    names = [column.name for column in sample_query.selected_columns]
    return AudiencePreview(
        size=int(size),
        sample=[
            {n: _json_value(v) for n, v in zip(names, row, strict=True)} for row in fetched.rows
        ],
        split_groups=[SplitGroupSize(g.id, g.name, counts.get(g.id, 0)) for g in stored.groups],
    )


def _json_value(value: object) -> Any:
    """A source value as JSON: times in ISO 8601 (UTC with `Z`), decimals as numbers."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


async def create_audience(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object
) -> Audience:
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(AudienceCreate, data, read_only=CATALOG_READ_ONLY_FIELDS)
    model = await reference_in_workspace(
        ctx.session, ParentModel, body.model_id, workspace_id, "model_id", "model"
    )
    await check_filter(ctx.session, model, body.filter)
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
    if "filter" in changes:
        model = await get_scoped(ctx.session, ParentModel, audience.model_id, workspace_id, "model")
        await check_filter(ctx.session, model, changes["filter"], audience=audience)
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
    user = await audience_referring_to(ctx.session, workspace_id, audience_id=audience.id)
    if user is not None:
        raise Conflict(
            f"audience {audience.id} is referred to by audience {user}'s filter; change it first"
        )
    await ctx.session.execute(delete(SplitGroup).where(SplitGroup.audience_id == audience.id))  # type: ignore[arg-type]
    await commit_change(ctx, audience, action="audience.delete", kind=KIND, deleted=True)
