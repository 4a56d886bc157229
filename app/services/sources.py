"""Sources: where audiences are computed. A source is stored only once a connection to it
works (DESIGN §6); its URL is encrypted and shown with the password hidden."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url

from app.context import ServiceContext
from app.crypto import CredentialCipher
from app.errors import Conflict
from app.services.changes import apply_changes, commit_change
from app.services.lookup import Page, authorize, get_many_scoped, get_scoped, is_referenced, page
from app.settings import Settings
from app.sources import connection
from app.sources.connection import SourceConnection, open_source
from app.validation import parse_input
from models import ParentModel, Source
from models.enums import Role, SourceType
from models.shapes.catalog import CATALOG_READ_ONLY_FIELDS, SourceCreate, SourceUpdate

KIND = "source"


def source_url(cipher: CredentialCipher, source: Source) -> str:
    """The stored URL, decrypted: for opening the source, never for showing."""
    url: str = cipher.decrypt(source.config_encrypted)["url"]
    return url


@asynccontextmanager
async def open_stored_source(
    settings: Settings, cipher: CredentialCipher, source: Source
) -> AsyncIterator[SourceConnection]:
    """A read-only connection to a stored source, statements under the timeout (DESIGN §6)."""
    url = source_url(cipher, source)
    async with open_source(settings, SourceType(source.type), url) as conn:
        yield conn


def public_config(ctx: ServiceContext, source: Source) -> dict[str, Any]:
    """The URL with its password hidden; nothing else of the config is shown."""
    url = make_url(ctx.cipher.decrypt(source.config_encrypted)["url"])
    return {"url": url.render_as_string(hide_password=True)}


async def list_sources(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, offset: int = 0, limit: int | None = None
) -> Page[Source]:
    authorize(ctx, workspace_id)
    return await page(
        ctx.session,
        Source,
        Source.workspace_id == workspace_id,
        order_by=[Source.created_at, Source.id],
        offset=offset,
        limit=limit,
    )


async def get_source(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, source_id: uuid.UUID
) -> Source:
    authorize(ctx, workspace_id)
    return await get_scoped(ctx.session, Source, source_id, workspace_id, KIND)


async def get_sources_by_ids(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, source_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Source]:
    """The workspace's sources among `source_ids`, in one query (for batch loaders)."""
    authorize(ctx, workspace_id)
    return await get_many_scoped(ctx.session, Source, source_ids, workspace_id)


async def create_source(ctx: ServiceContext, *, workspace_id: uuid.UUID, data: object) -> Source:
    authorize(ctx, workspace_id, Role.editor)
    body = parse_input(SourceCreate, data, read_only=CATALOG_READ_ONLY_FIELDS)
    await connection.check_source(ctx.settings, body.type, body.config.url)
    source = Source(
        workspace_id=workspace_id,
        name=body.name,
        type=body.type.value,
        config_encrypted=ctx.cipher.encrypt(body.config.model_dump()),
        created_by=ctx.principal.account_id,
    )
    await commit_change(
        ctx, source, action="source.create", kind=KIND, detail={"name": source.name}
    )
    return source


async def update_source(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, source_id: uuid.UUID, data: object
) -> Source:
    authorize(ctx, workspace_id, Role.editor)
    source = await get_scoped(ctx.session, Source, source_id, workspace_id, KIND)
    body = parse_input(SourceUpdate, data, read_only=CATALOG_READ_ONLY_FIELDS)
    changes: dict[str, Any] = {}
    if body.name is not None:
        changes["name"] = body.name
    source_type = body.type or SourceType(source.type)
    if body.type is not None or body.config is not None:
        config = (
            body.config.model_dump() if body.config else ctx.cipher.decrypt(source.config_encrypted)
        )
        await connection.check_source(ctx.settings, source_type, config["url"])
        changes["type"] = source_type.value
        changes["config_encrypted"] = ctx.cipher.encrypt(config)
    fields = apply_changes(source, changes)
    await commit_change(ctx, source, action="source.update", kind=KIND, detail={"fields": fields})
    return source


async def check_source(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, source_id: uuid.UUID
) -> None:
    """Connect to the stored source and run a trivial query: a 422 on `config.url` naming
    the database's (sanitised) reason if that fails. Viewers may check: nothing changes, and
    a preview, which they may also run, connects just the same."""
    authorize(ctx, workspace_id)
    source = await get_scoped(ctx.session, Source, source_id, workspace_id, KIND)
    await connection.check_source(
        ctx.settings, SourceType(source.type), source_url(ctx.cipher, source)
    )


async def delete_source(
    ctx: ServiceContext, *, workspace_id: uuid.UUID, source_id: uuid.UUID
) -> None:
    authorize(ctx, workspace_id, Role.editor)
    source = await get_scoped(ctx.session, Source, source_id, workspace_id, KIND)
    if await is_referenced(ctx.session, ParentModel.source_id, source.id):
        raise Conflict(f"source {source.id} is used by a model; delete the model first")
    await commit_change(ctx, source, action="source.delete", kind=KIND, deleted=True)
