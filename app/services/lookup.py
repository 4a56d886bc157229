"""Workspace-scoped lookups and pages: the BOLA rule lives here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import exists, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, select

from app.context import ServiceContext
from app.errors import InvalidInput, NotFound
from models.enums import Role

RowT = TypeVar("RowT", bound=SQLModel)

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page(Generic[RowT]):
    items: Sequence[RowT]
    total: int
    offset: int


def authorize(ctx: ServiceContext, workspace_id: uuid.UUID, role: Role = Role.viewer) -> None:
    """The caller must act in `workspace_id` with at least `role`."""
    ctx.principal.require_workspace(workspace_id)
    ctx.principal.require(role)


async def get_scoped(
    session: AsyncSession,
    table: type[RowT],
    object_id: uuid.UUID,
    workspace_id: uuid.UUID,
    kind: str,
) -> RowT:
    """The object of this workspace, or NotFound (an object elsewhere looks absent)."""
    row = await session.get(table, object_id)
    if row is None or row.workspace_id != workspace_id:  # type: ignore[attr-defined]
        raise NotFound.of(kind, object_id)
    return row


async def get_many_scoped(
    session: AsyncSession,
    table: type[RowT],
    object_ids: Sequence[uuid.UUID],
    workspace_id: uuid.UUID,
) -> dict[uuid.UUID, RowT]:
    """The objects of this workspace among `object_ids`, by id, in one query (batch loads)."""
    if not object_ids:
        return {}
    column: Any = table.id  # type: ignore[attr-defined]
    rows = await session.execute(
        select(table).where(column.in_(set(object_ids)), table.workspace_id == workspace_id)  # type: ignore[attr-defined]
    )
    return {row.id: row for row in rows.scalars().all()}  # type: ignore[attr-defined]


async def reference_in_workspace(
    session: AsyncSession,
    table: type[RowT],
    object_id: uuid.UUID,
    workspace_id: uuid.UUID,
    field: str,
    kind: str,
) -> RowT:
    """A referenced object of a body: absent or foreign is a 422 naming the field."""
    row = await session.get(table, object_id)
    if row is None or row.workspace_id != workspace_id:  # type: ignore[attr-defined]
        raise InvalidInput.field(field, f"no {kind} {object_id} in this workspace")
    return row


def check_window(offset: int, limit: int | None) -> None:
    """A page window callers may ask for (`first` ≤ MAX_PAGE_SIZE, a valid `after`)."""
    if limit is not None and not 0 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput.field("first", f"must be between 0 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise InvalidInput.field("after", "invalid cursor")


async def page(
    session: AsyncSession,
    table: type[RowT],
    *where: Any,
    order_by: Sequence[Any],
    offset: int = 0,
    limit: int | None = None,
) -> Page[RowT]:
    """Rows matching `where` in a stable order, with the total count."""
    check_window(offset, limit)
    total = (
        await session.execute(select(func.count()).select_from(table).where(*where))
    ).scalar_one()
    query = select(table).where(*where).order_by(*order_by).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    items = (await session.execute(query)).scalars().all()
    return Page(items=items, total=total, offset=offset)


async def is_referenced(session: AsyncSession, column: Any, object_id: uuid.UUID) -> bool:
    """True when some row's `column` points at `object_id` (deleting it would orphan them)."""
    return bool((await session.execute(select(exists().where(column == object_id)))).scalar())
