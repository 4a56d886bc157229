"""The plan: compare the audience with what the destination holds because we sent it.

Both sides arrive as streams in the same key order, so the diff is a merge join that holds
one member of each side at a time, whatever the audience's size (DESIGN §5.1, step 2).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Change(StrEnum):
    add = "add"  #: a member the destination does not hold
    update = "update"  #: held, but what we sent differs from what we would send now
    remove = "remove"  #: held, no longer a member
    unchanged = "unchanged"


@dataclass(frozen=True)
class Member:
    key: str
    payload: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True)
class Step:
    change: Change
    key: str
    #: The current member (None for a removal).
    member: Member | None
    #: The fingerprint held before this run (None for an addition).
    held_fingerprint: str | None


SortKey = Callable[[str], Any]


async def _next(iterator: AsyncIterator[Any]) -> Any:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return None


async def plan_diff(
    members: AsyncIterator[Member],
    held: AsyncIterator[tuple[str, str]],
    sort_key: SortKey = str,
) -> AsyncIterator[Step]:
    """Yield one step per key of either side, in key order.

    `members` and `held` (key, fingerprint) must both be sorted by `sort_key` and free of
    duplicate keys; the caller weeds out invalid and duplicate members before the plan.
    """
    member, pair = await _next(members), await _next(held)
    while member is not None or pair is not None:
        if pair is None or (member is not None and sort_key(member.key) < sort_key(pair[0])):
            yield Step(Change.add, member.key, member, None)
            member = await _next(members)
        elif member is None or sort_key(pair[0]) < sort_key(member.key):
            yield Step(Change.remove, pair[0], None, pair[1])
            pair = await _next(held)
        else:
            change = Change.unchanged if member.fingerprint == pair[1] else Change.update
            yield Step(change, member.key, member, pair[1])
            member, pair = await _next(members), await _next(held)
