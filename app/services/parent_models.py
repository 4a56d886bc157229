"""Parent models: one row per person, a query or a table on a source with a primary key.

Column introspection arrives with the audiences engine; until then `columns` is None.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from app.context import ServiceContext
from app.errors import Conflict
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
    await reference_in_workspace(
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
    fields = apply_changes(model, changes)
    await commit_change(ctx, model, action="model.update", kind=KIND, detail={"fields": fields})
    return model


async def delete_model(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, model_id: uuid.UUID
) -> None:
    authorize(ctx, workspace_id, Role.editor)
    model = await get_scoped(ctx.session, ParentModel, model_id, workspace_id, KIND)
    if await is_referenced(ctx.session, Audience.model_id, model.id):
        raise Conflict(f"model {model.id} is used by an audience; delete the audience first")
    await commit_change(ctx, model, action="model.delete", kind=KIND, deleted=True)
