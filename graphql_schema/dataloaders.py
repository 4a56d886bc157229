"""Per-request batch loaders: the audiences, destinations, split groups and runs of N objects
cost a query or two each, whatever N is.

Each loader calls a service batch function, so the workspace scoping rule stays in
app.services; an id that is not in the caller's workspace loads as NotFound.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.errors import NotFound
from app.services import (
    audiences,
    destinations,
    parent_models,
    runs,
    sources,
    split_groups,
    syncs,
)
from app.services.lookup import Page
from models import Audience, AudienceSync, Destination, ParentModel, Source, SplitGroup, SyncRun

#: A window of one sync's runs: (sync id, offset, limit).
RunWindow = tuple[uuid.UUID, int, int | None]

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
        self.split_groups = DataLoader[uuid.UUID, list[SplitGroup]](self._split_groups)
        self.runs = DataLoader[RunWindow, Page[SyncRun]](self._runs)

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

    async def _split_groups(self, ids: list[uuid.UUID]) -> list[list[SplitGroup] | BaseException]:
        found = await self._context.call(
            split_groups.split_groups_of_audiences,
            workspace_id=await self._context.workspace_id(),
            audience_ids=ids,
        )
        return [found[i] if i in found else NotFound.of(audiences.KIND, i) for i in ids]

    async def _runs(self, keys: list[RunWindow]) -> list[Page[SyncRun] | BaseException]:
        """One batch per distinct window (every sync of a list usually asks the same one)."""
        pages: dict[RunWindow, Page[SyncRun]] = {}
        for offset, limit in dict.fromkeys((offset, limit) for _, offset, limit in keys):
            found = await self._context.call(
                runs.list_runs_of_syncs,
                workspace_id=await self._context.workspace_id(),
                sync_ids=[key for key, o, n in keys if (o, n) == (offset, limit)],
                offset=offset,
                limit=limit,
            )
            pages.update({(key, offset, limit): page for key, page in found.items()})
        return [pages.get(key) or NotFound.of(syncs.KIND, key[0]) for key in keys]
