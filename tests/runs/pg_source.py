"""A PostgreSQL source database of a test's own, and an audience over one of its tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from app.runtime import Runtime
from app.services import audiences, parent_models, sources
from tests.factories import World, as_token
from tests.services import POSTGRES_ADMIN_URL, unique_name


@asynccontextmanager
async def source_database(
    prefix: str, fill: Callable[[asyncpg.Connection], Awaitable[Any]]
) -> AsyncIterator[str]:
    """The URL of a new database, filled by `fill`, dropped on the way out."""
    name = unique_name(prefix)
    admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        connection = await asyncpg.connect(url)
        try:
            await fill(connection)
        finally:
            await connection.close()
        yield url
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def table_audience(
    runtime: Runtime, world: World, url: str, *, table: str, filter: dict[str, Any]
) -> uuid.UUID:
    """A PostgreSQL source at `url`, a model of `table` keyed by `id`, and an audience of the
    rows `filter` selects."""
    async with as_token(runtime, world.editor_token) as ctx:
        source = await sources.create_source(
            ctx,
            workspace_id=world.workspace_id,
            data={"name": "pg", "type": "postgres", "config": {"url": url}},
        )
        model = await parent_models.create_model(
            ctx,
            workspace_id=world.workspace_id,
            data={"name": table, "source_id": str(source.id), "table": table, "primary_key": "id"},
        )
        audience = await audiences.create_audience(
            ctx,
            workspace_id=world.workspace_id,
            data={"name": f"{table} audience", "model_id": str(model.id), "filter": filter},
        )
    return audience.id
