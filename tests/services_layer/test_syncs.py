"""The audience-sync service on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from app.errors import BadRequest, InvalidInput, NotFound
from app.runtime import Runtime
from app.services import syncs
from tests.factories import World, as_token, create_sync, create_world, table_counts


async def test_create_then_update_only_given_fields(runtime: Runtime, world: World) -> None:
    sync = await create_sync(runtime, world)
    assert sync.status == "active" and sync.config == {} and sync.status_error == ""
    async with as_token(runtime, world.editor_token) as ctx:
        updated = await syncs.update_audience_sync(
            ctx, workspace_id=world.workspace_id, sync_id=sync.id, data={"name": "renamed"}
        )
    assert updated.name == "renamed"
    assert updated.schedule == "0 */4 * * *"
    assert updated.updated_at > sync.created_at


async def test_audience_of_another_workspace_looks_absent(runtime: Runtime, world: World) -> None:
    other = await create_world(runtime)
    before = await table_counts(runtime)
    async with as_token(runtime, world.admin_token) as ctx:
        with pytest.raises(InvalidInput) as caught:
            await syncs.create_audience_sync(
                ctx,
                workspace_id=world.workspace_id,
                data=world.sync_body(audience_id=str(other.audience_id)),
            )
    assert caught.value.details[0].field == "audience_id"
    assert await table_counts(runtime) == before


async def test_read_only_field_is_bad_request(runtime: Runtime, world: World) -> None:
    async with as_token(runtime, world.admin_token) as ctx:
        with pytest.raises(BadRequest) as caught:
            await syncs.create_audience_sync(
                ctx, workspace_id=world.workspace_id, data=world.sync_body(status_error="x")
            )
    assert [d.field for d in caught.value.details] == ["status_error"]


async def test_sync_of_another_workspace_is_not_found(runtime: Runtime, world: World) -> None:
    other = await create_world(runtime)
    foreign = await create_sync(runtime, other)
    async with as_token(runtime, world.admin_token) as ctx:
        with pytest.raises(NotFound):
            await syncs.get_audience_sync(ctx, workspace_id=world.workspace_id, sync_id=foreign.id)
