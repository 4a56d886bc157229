"""The plan: compare the audience with what the destination holds because we sent it.

Both sides arrive in batches in the same key order, and the diff is a merge join done a
stretch of keys at a time: a batch of members is matched with the held members up to its
last key, found by bisection (a few key comparisons a batch, not one a member), by dict
lookups. Memory holds about a batch of each side, whatever the audience's size (DESIGN
§5.1, step 2).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Payload = dict[str, Any]
SortKey = Callable[[str], Any]


class Change(StrEnum):
    add = "add"  #: a member the destination does not hold
    update = "update"  #: held, but what we sent differs from what we would send now
    remove = "remove"  #: held, no longer a member
    unchanged = "unchanged"


@dataclass(frozen=True)
class Members:
    """A batch of the audience: its valid members in key order (no key twice), as parallel
    lists, and what the batch held beside them."""

    keys: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    #: Each member's payload; None: built only when asked for, from `rows` by `mapped`.
    payloads: list[Payload] | None = None
    rows: Sequence[Mapping[str, Any]] = ()
    mapped: Callable[[Mapping[str, Any]], Payload] | None = None
    #: Source rows the batch came from (valid or not).
    size: int = 0
    #: (key, reason) of each row that cannot be sent (null or duplicate key, bad value).
    invalid: list[tuple[str | None, str]] = field(default_factory=list)

    def payloads_at(self, indexes: Sequence[int]) -> list[Payload]:
        """The payloads of the members at `indexes`."""
        if self.payloads is not None:
            return [self.payloads[i] for i in indexes]
        assert self.mapped is not None
        return list(map(self.mapped, [self.rows[i] for i in indexes]))


@dataclass(frozen=True)
class Stretch:
    """The plan of one stretch of keys: every member of a batch, and every held member whose
    key falls in the same stretch."""

    members: Members
    #: The fingerprint held for each member (None: not held, an addition).
    held: list[str | None]
    #: (key, held fingerprint) of the held members that are no longer members, in key order.
    gone: list[tuple[str, str]]

    @property
    def last_key(self) -> str | None:
        """The stretch's last key (None when it holds no key)."""
        if self.members.keys:
            return self.members.keys[-1]
        return self.gone[-1][0] if self.gone else None

    def changes(self) -> list[Change]:
        """The change of each member, as the batch form of a plan step."""
        return [
            Change.add if held is None else Change.unchanged if held == fp else Change.update
            for held, fp in zip(self.held, self.members.fingerprints, strict=True)
        ]


async def plan_stretches(
    members: AsyncIterator[Members],
    held: AsyncIterator[Sequence[tuple[str, str]]],
    sort_key: SortKey = str,
) -> AsyncIterator[Stretch]:
    """One stretch per batch of members, then the held members past the last one.

    `members` and `held` (batches of (key, fingerprint)) must both be sorted by `sort_key`
    and free of duplicate keys; the caller weeds out invalid and duplicate members first.
    """
    pending: list[tuple[str, str]] = []  # held members read but not planned yet
    more_held = True

    def key_of(pair: tuple[str, str]) -> Any:
        return sort_key(pair[0])

    async for batch in members:
        if not batch.keys:
            yield Stretch(batch, [], [])
            continue
        bound = sort_key(batch.keys[-1])
        while more_held and (not pending or key_of(pending[-1]) <= bound):
            more = await anext(held, None)
            if more is None:
                more_held = False
            else:
                pending.extend(more)
        cut = bisect_right(pending, bound, key=key_of)
        matched = dict(pending[:cut])
        del pending[:cut]
        pop = matched.pop
        fingerprints = [pop(key, None) for key in batch.keys]
        yield Stretch(batch, fingerprints, list(matched.items()))
    while pending or more_held:  # the members are done: what is still held has left
        if pending:
            yield Stretch(Members(), [], pending)
            pending = []
        more = await anext(held, None) if more_held else None
        if more is None:
            more_held = False
        else:
            pending = list(more)
