"""A sync that targets one split group: the destination holds exactly that group, and a
percentage change moves exactly the members whose bucket changed hands."""

from __future__ import annotations

import hashlib

from app.runtime import Runtime
from app.services import split_groups
from models import Audience, SplitGroup
from models.enums import RunStatus
from tests.destinations.receiver import Receiver
from tests.factories import HIGH_VALUE_IDS, World, add_customers, as_token, create_world
from tests.runs.test_trigger import hooked_sync, trigger

EXTRA = [
    (1000 + i, f"s{i}@example.com", "US", 700.0, "pro", "2024-01-01T00:00:00Z") for i in range(300)
]
MEMBERS = [*HIGH_VALUE_IDS, *(row[0] for row in EXTRA)]


def bucket(salt: str, key: str) -> int:
    """DESIGN §5.3, written out again: first 8 bytes of SHA-256(salt:key), mod 10 000."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big") % 10_000


async def group_members(runtime: Runtime, world: World, name: str) -> set[int]:
    async with runtime.database.session() as session:
        audience = await session.get(Audience, world.audience_id)
        from sqlmodel import select

        groups = (
            await session.execute(
                select(SplitGroup).where(SplitGroup.audience_id == world.audience_id)
            )
        ).scalars()
        group = next(g for g in groups if g.name == name)
    assert audience is not None and group.ranges
    return {
        key
        for key in MEMBERS
        if any(a <= bucket(audience.split_salt, str(key)) < b for a, b in group.ranges)
    }


async def set_groups(runtime: Runtime, world: World, a: int) -> dict[str, str]:
    async with as_token(runtime, world.editor_token) as ctx:
        groups = await split_groups.replace_split_groups(
            ctx,
            workspace_id=world.workspace_id,
            audience_id=world.audience_id,
            data=[{"name": "A", "percentage": a}, {"name": "B", "percentage": 100 - a}],
        )
    return {g.name: str(g.id) for g in groups}


async def test_a_split_group_sync_follows_its_group(
    local_runtime: Runtime, receiver: Receiver, hook_url: str
) -> None:
    world = await create_world(local_runtime)
    add_customers(world, EXTRA)
    ids = await set_groups(local_runtime, world, 50)
    sync = await hooked_sync(
        local_runtime, world, hook_url, split_group_id=ids["A"], config={"max_removal_ratio": 1.0}
    )
    first = await trigger(local_runtime, world, sync)
    in_a = await group_members(local_runtime, world, "A")
    assert first.status == RunStatus.succeeded and 0 < len(in_a) < len(MEMBERS)
    assert {int(k) for k in receiver.members} == in_a and first.query_size == len(in_a)

    assert (await set_groups(local_runtime, world, 30))["A"] == ids["A"]  # same group id
    second = await trigger(local_runtime, world, sync)
    now_in_a = await group_members(local_runtime, world, "A")
    assert now_in_a < in_a  # shrinking A only gives members away
    assert {int(k) for k in receiver.members} == now_in_a
    assert second.succeeded == {"add": 0, "update": 0, "remove": len(in_a - now_in_a)}
