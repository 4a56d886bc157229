"""Split groups through the service layer: assignments read back through the membership
stream, before and after a change of percentages (DESIGN §5.3)."""

from __future__ import annotations

import uuid

from app.runtime import Runtime
from app.services import audiences, split_groups
from app.services.audience_members import stream_audience_members
from app.services.audit import list_audit_log
from app.sources.splits import BUCKETS
from tests.factories import World, add_customers, as_token


async def assignments(runtime: Runtime, world: World, group_ids: list[uuid.UUID]) -> dict[str, str]:
    """member key -> group name, from the stream of each group."""
    found: dict[str, str] = {}
    for group_id in group_ids:
        async for key, row in stream_audience_members(
            runtime,
            workspace_id=world.workspace_id,
            audience_id=world.audience_id,
            split_group_id=group_id,
            columns=["email"],
        ):
            assert key is not None and set(row) == {"id", "email"}
            assert key not in found
            found[key] = str(group_id)
    return found


async def test_a_percentage_change_moves_only_the_members_it_must(
    runtime: Runtime, world: World
) -> None:
    add_customers(
        world,
        [(i, f"c{i}@example.com", "US", 1000.0 + i, "pro", "2024-01-01T00:00:00Z")
         for i in range(100, 2100)],
    )  # fmt: skip
    async with as_token(runtime, world.editor_token) as ctx:
        before_groups = await split_groups.replace_split_groups(
            ctx,
            workspace_id=world.workspace_id,
            audience_id=world.audience_id,
            data=[{"name": "A", "percentage": 50}, {"name": "B", "percentage": 50}],
        )
    a, b = (group.id for group in before_groups)
    before = await assignments(runtime, world, [a, b])
    everyone = [key async for key, _ in stream_audience_members(
        runtime, workspace_id=world.workspace_id, audience_id=world.audience_id
    )]  # fmt: skip
    assert sorted(before) == sorted(everyone) and len(everyone) == 2004

    async with as_token(runtime, world.editor_token) as ctx:
        after_groups = await split_groups.replace_split_groups(
            ctx,
            workspace_id=world.workspace_id,
            audience_id=world.audience_id,
            data=[{"name": "A", "percentage": 40}, {"name": "B", "percentage": 60}],
        )
        preview = await audiences.preview_audience(
            ctx, workspace_id=world.workspace_id, audience_id=world.audience_id
        )
    assert [g.id for g in after_groups] == [a, b]  # the same groups, by name
    after = await assignments(runtime, world, [a, b])
    assert sorted(after) == sorted(before)
    moved = {key for key in before if before[key] != after[key]}
    # Only A shrank: only members of A moved, all of them to B, about a fifth of A.
    assert all(before[key] == str(a) and after[key] == str(b) for key in moved)
    a_before = sum(1 for group in before.values() if group == str(a))
    assert 0 < len(moved) < a_before * 0.3
    sizes = {g.id: g.size for g in preview.split_groups}
    assert sizes == {a: sum(1 for g in after.values() if g == str(a)),
                     b: sum(1 for g in after.values() if g == str(b))}  # fmt: skip

    async with as_token(runtime, world.viewer_token) as ctx:
        listed = await split_groups.list_split_groups(
            ctx, workspace_id=world.workspace_id, audience_id=world.audience_id
        )
    assert [(g.name, g.basis_points) for g in listed] == [("A", 4000), ("B", 6000)]
    covered = sorted(tuple(r) for g in listed for r in g.ranges or [])
    assert sum(stop - start for start, stop in covered) == BUCKETS


async def test_replacing_split_groups_is_audited(runtime: Runtime, world: World) -> None:
    async with as_token(runtime, world.editor_token) as ctx:
        await split_groups.replace_split_groups(
            ctx,
            workspace_id=world.workspace_id,
            audience_id=world.audience_id,
            data=[{"name": "all", "percentage": 100}],
        )
    async with as_token(runtime, world.admin_token) as ctx:
        rows = (await list_audit_log(ctx, workspace_id=world.workspace_id)).items
    assert rows[0].action == "audience.split_groups.replace"
    assert rows[0].target_id == str(world.audience_id)
