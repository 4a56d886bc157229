"""Audiences as the engine sees them: filters resolved within one workspace, compiled on the
audience's model, with the split layout stored beside the groups (DESIGN §5.3, §6)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from app.errors import Conflict
from app.sources.filter_tree import AudienceSpec
from app.sources.filters import AudienceQuery, compile_audience, referenced_ids
from app.sources.model import ModelSpec
from app.sources.splits import SplitLayout
from models import Audience, ParentModel, Source, SplitGroup


class WorkspaceResolver:
    """The `FilterResolver` of one workspace: a model or audience elsewhere looks absent."""

    def __init__(self, session: AsyncSession, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    async def model(self, model_id: uuid.UUID) -> ModelSpec | None:
        row = await self.session.get(ParentModel, model_id)
        if row is None or row.workspace_id != self.workspace_id:
            return None
        return ModelSpec.of(row)

    async def audience(self, audience_id: uuid.UUID) -> AudienceSpec | None:
        row = await self.session.get(Audience, audience_id)
        if row is None or row.workspace_id != self.workspace_id:
            return None
        return AudienceSpec.of(row)


async def check_filter(
    session: AsyncSession,
    model: ParentModel,
    raw_filter: object,
    *,
    audience: Audience | None = None,
) -> AudienceQuery:
    """Parse, type-check and compile a filter on `model`: a 422 naming each bad condition.

    `audience` is the audience being changed, so that a reference back to it is a cycle.
    """
    resolver = WorkspaceResolver(session, model.workspace_id)
    spec = AudienceSpec.of(audience) if audience is not None else None
    return await compile_audience(raw_filter, ModelSpec.of(model), resolver, audience=spec)


@dataclass(frozen=True)
class StoredAudience:
    """What computing an audience needs, loaded from the metadata database in one go."""

    audience: Audience
    query: AudienceQuery
    source: Source
    groups: list[SplitGroup]

    @property
    def layout(self) -> SplitLayout[uuid.UUID] | None:
        return split_layout(self.groups) if self.groups else None


async def load_audience(session: AsyncSession, audience: Audience) -> StoredAudience:
    """The audience compiled against its model now, its source and its split groups."""
    model = await session.get(ParentModel, audience.model_id)
    source = await session.get(Source, model.source_id) if model is not None else None
    if model is None or source is None:
        raise Conflict(f"audience {audience.id} has lost its model or source")
    query = await check_filter(session, model, audience.filter, audience=audience)
    return StoredAudience(audience, query, source, await split_groups_of(session, audience.id))


async def split_groups_of(session: AsyncSession, audience_id: uuid.UUID) -> list[SplitGroup]:
    rows = await session.execute(
        select(SplitGroup)
        .where(SplitGroup.audience_id == audience_id)
        .order_by(SplitGroup.position, SplitGroup.created_at)  # type: ignore[arg-type]
    )
    return list(rows.scalars().all())


def split_layout(groups: Sequence[SplitGroup]) -> SplitLayout[uuid.UUID]:
    """The stored layout by group id; rows from before migration 0002 (no ranges) get the
    contiguous layout of their order."""
    if any(group.ranges is None for group in groups):
        return SplitLayout.fresh([(group.id, group.basis_points) for group in groups])
    return SplitLayout(
        {group.id: tuple((int(a), int(b)) for a, b in group.ranges or ()) for group in groups}
    )


async def audience_referring_to(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    audience_id: uuid.UUID | None = None,
    model_id: uuid.UUID | None = None,
) -> uuid.UUID | None:
    """An audience of the workspace whose filter names `audience_id` (an audience condition)
    or `model_id` (an event condition), if any: deleting either would break it."""
    rows = await session.execute(
        select(Audience.id, Audience.filter).where(Audience.workspace_id == workspace_id)
    )
    for other_id, raw_filter in rows.all():
        audiences, models = referenced_ids(raw_filter)
        if other_id != audience_id and (audience_id in audiences or model_id in models):
            return other_id
    return None
