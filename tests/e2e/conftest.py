"""The authorization scene shared by the REST and GraphQL matrices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from app.runtime import Runtime
from app.services import tokens
from models import SyncRun
from tests.factories import World, as_token, create_sync, create_world

READ, WRITE, ADMIN = "viewer", "editor", "admin"
RANK = {READ: 0, WRITE: 1, ADMIN: 2}


@dataclass
class Scene:
    """Two workspaces with one of everything; `ids` are the objects of `world`."""

    world: World
    other: World
    ids: dict[str, uuid.UUID]
    foreign: dict[str, uuid.UUID]
    revoked_token: str


async def objects_of(runtime: Runtime, world: World) -> dict[str, uuid.UUID]:
    sync = await create_sync(runtime, world)
    async with runtime.database.session() as session:
        run = SyncRun(sync_id=sync.id, workspace_id=world.workspace_id, status="succeeded")
        session.add(run)
        await session.commit()
    async with as_token(runtime, world.admin_token) as ctx:
        minted = await tokens.create_token(
            ctx, workspace_id=world.workspace_id, data={"name": "spare"}
        )
    return {
        "ws": world.workspace_id,
        "sync": sync.id,
        "run": run.id,
        "source": world.source_id,
        "model": world.model_id,
        "audience": world.audience_id,
        "destination": world.destination_id,
        "token": minted.token.id,
    }


@pytest.fixture
async def scene(runtime: Runtime, world: World) -> Scene:
    other = await create_world(runtime)
    ids = await objects_of(runtime, world)
    foreign = await objects_of(runtime, other)
    async with as_token(runtime, world.admin_token) as ctx:
        minted = await tokens.create_token(
            ctx, workspace_id=world.workspace_id, data={"name": "doomed"}
        )
        await tokens.revoke_token(ctx, workspace_id=world.workspace_id, token_id=minted.token.id)
    assert minted.secret
    return Scene(world=world, other=other, ids=ids, foreign=foreign, revoked_token=minted.secret)
