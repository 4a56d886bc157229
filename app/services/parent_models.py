"""Parent models: one row per person, a query or a table on a source with a primary key.

Columns are introspected on the source when a model is created, when its query, table or key
change, and on demand (`refresh_model_columns`); a model that does not run is a 422 naming
`query` or `table` with the database's (sanitised) message, and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from app.context import ServiceContext
from app.errors import Conflict
from app.services.audience_queries import audience_referring_to
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
from app.sources.introspect import describe_model
from app.validation import parse_input
from models import Audience, ParentModel, Source
from models.enums import Role
from models.shapes.catalog import CATALOG_READ_ONLY_FIELDS, ModelCreate, ModelUpdate

KIND = "model"
READ_ONLY = (*CATALOG_READ_ONLY_FIELDS, "columns")


async def list_models(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[ParentModel]:
    authorize(ctx, workspace_id)
    return await page(
        ctx.session,
        ParentModel,
        ParentModel.workspace_id == workspace_id,
        order_by=[ParentModel.created_at, ParentModel.id],
        offset=offset,
        limit=limit,
    )


async def get_model(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_id: uuid.UUID
) -> ParentModel:
    authorize(ctx, workspace_id)
    return await get_scoped(ctx.session, ParentModel, model_id, workspace_id, KIND)


async def get_models_by_ids(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ParentModel]:
    """The workspace's models among `model_ids`, in one query (for batch loaders)."""
    authorize(ctx, workspace_id)
    return await get_many_scoped(ctx.session, ParentModel, model_ids, workspace_id)


async def create_model(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object
) -> ParentModel:
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(ModelCreate, data, read_only=READ_ONLY, nullable=("query", "table"))
    source = await reference_in_workspace(
        ctx.session, Source, body.source_id, workspace_id, "source_id", "source"
    )
    model = ParentModel(
        workspace_id=workspace_id,
        source_id=body.source_id,
        name=body.name,
        query=body.query,
        table_name=body.table,
        primary_key=body.primary_key,
        created_by=ctx.principal.account_id,
    )
    model.columns = await _introspect(
        ctx, source, query=body.query, table=body.table, primary_key=body.primary_key
    )
    await commit_change(ctx, model, action="model.create", kind=KIND, detail={"name": model.name})
    return model


async def update_model(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_id: uuid.UUID, data: object
) -> ParentModel:
    authorize(ctx, workspace_id, Role.editor)
    model = await get_scoped(ctx.session, ParentModel, model_id, workspace_id, KIND)
    body = parse_input(ModelUpdate, data, read_only=(*READ_ONLY, "source_id"))
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"query", "table"})
    # A new query replaces the table and vice versa; the introspected columns go stale.
    if body.query is not None:
        changes.update(query=body.query, table_name=None, columns=None)
    if body.table is not None:
        changes.update(table_name=body.table, query=None, columns=None)
    if {"query", "table_name", "primary_key"} & changes.keys():
        source = await get_scoped(ctx.session, Source, model.source_id, workspace_id, "source")
        changes["columns"] = await _introspect(
            ctx,
            source,
            query=changes.get("query", model.query),
            table=changes.get("table_name", model.table_name),
            primary_key=changes.get("primary_key", model.primary_key),
        )
    fields = apply_changes(model, changes)
    await commit_change(ctx, model, action="model.update", kind=KIND, detail={"fields": fields})
    return model


async def refresh_model_columns(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_id: uuid.UUID
) -> ParentModel:
    """Introspect the model's columns again (after the source's schema changed)."""
    authorize(ctx, workspace_id, Role.editor)
    model = await get_scoped(ctx.session, ParentModel, model_id, workspace_id, KIND)
    source = await get_scoped(ctx.session, Source, model.source_id, workspace_id, "source")
    columns = await _introspect(
        ctx, source, query=model.query, table=model.table_name, primary_key=model.primary_key
    )
    fields = apply_changes(model, {"columns": columns})
    await commit_change(ctx, model, action="model.refresh", kind=KIND, detail={"fields": fields})
    return model


async def delete_model(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_id: uuid.UUID
) -> None:
    authorize(ctx, workspace_id, Role.editor)
    model = await get_scoped(ctx.session, ParentModel, model_id, workspace_id, KIND)
    if await is_referenced(ctx.session, Audience.model_id, model.id):
        raise Conflict(f"model {model.id} is used by an audience; delete the audience first")
    user = await audience_referring_to(ctx.session, workspace_id, model_id=model.id)
    if user is not None:
        raise Conflict(
            f"model {model.id} is the event model of audience {user}'s filter; change it first"
        )
    await commit_change(ctx, model, action="model.delete", kind=KIND, deleted=True)


async def _introspect(
    ctx: ServiceContext, source: Source, *, query: str | None, table: str | None, primary_key: str
) -> list[dict[str, Any]]:
    """The model's columns as stored; a 422 naming `query`/`table`/`primary_key` if it fails."""
    async with open_stored_source(ctx.settings, ctx.cipher, source) as connection:
        columns = await describe_model(
            connection, query=query, table=table, primary_key=primary_key
        )
    return [column.as_json() for column in columns]
