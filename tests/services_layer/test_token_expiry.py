"""Token expiry must be an instant: a local time without an offset is a 422, not a crash."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput
from app.runtime import Runtime
from app.services import tokens
from tests.factories import World, as_token, table_counts


async def test_expiry_without_offset_names_the_field(runtime: Runtime, world: World) -> None:
    before = await table_counts(runtime)
    async with as_token(runtime, world.admin_token) as ctx:
        with pytest.raises(InvalidInput) as caught:
            await tokens.create_token(
                ctx,
                workspace_id=world.workspace_id,
                data={"name": "ci", "expires_at": "2999-01-01T00:00:00"},
            )
    assert [d.field for d in caught.value.details] == ["expires_at"]
    assert await table_counts(runtime) == before
