"""Per-request batch loaders: the audiences and destinations of N syncs cost one query each.

Each loader calls a service batch function, so the workspace scoping rule stays in
app.services; an id that is not in the caller's workspace loads as NotFound.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.errors import NotFound
from app.services import audiences, destinations, parent_models, sources, syncs
from models import Audience, AudienceSync, Destination, ParentModel, Source

if TYPE_CHECKING:
    from graphql_schema.context import GraphQLContext


class Loaders:
    def __init__(self, context: GraphQLContext) -> None:
        self._context = context
        self.audience = DataLoader[uuid.UUID, Audience](self._audiences)
        self.destination = DataLoader[uuid.UUID, Destination](self._destinations)
        self.model = DataLoader[uuid.UUID, ParentModel](self._models)
        self.source = DataLoader[uuid.UUID, Source](self._sources)
        self.sync = DataLoader[uuid.UUID, AudienceSync](self._syncs)

    async def _audiences(self, ids: list[uuid.UUID]) -> list[Audience | BaseException]:
        found = await self._context.call(
            audiences.get_audiences_by_ids,
            workspace_id=await self._context.workspace_id(),
            audience_ids=ids,
        )
        return [found.get(i) or NotFound.of(audiences.KIND, i) for i in ids]

    async def _destinations(self, ids: list[uuid.UUID]) -> list[Destination | BaseException]:
        found = await self._context.call(
            destinations.get_destinations_by_ids,
            workspace_id=await self._context.workspace_id(),
            destination_ids=ids,
        )
        return [found.get(i) or NotFound.of(destinations.KIND, i) for i in ids]

    async def _models(self, ids: list[uuid.UUID]) -> list[ParentModel | BaseException]:
        found = await self._context.call(
            parent_models.get_models_by_ids,
            workspace_id=await self._context.workspace_id(),
            model_ids=ids,
        )
        return [found.get(i) or NotFound.of(parent_models.KIND, i) for i in ids]

    async def _sources(self, ids: list[uuid.UUID]) -> list[Source | BaseException]:
        found = await self._context.call(
            sources.get_sources_by_ids,
            workspace_id=await self._context.workspace_id(),
            source_ids=ids,
        )
        return [found.get(i) or NotFound.of(sources.KIND, i) for i in ids]

    async def _syncs(self, ids: list[uuid.UUID]) -> list[AudienceSync | BaseException]:
        found = await self._context.call(
            syncs.get_audience_syncs_by_ids,
            workspace_id=await self._context.workspace_id(),
            sync_ids=ids,
        )
        return [found.get(i) or NotFound.of(syncs.KIND, i) for i in ids]
