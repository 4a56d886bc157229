"""The plan: compare the audience with what the destination holds because we sent it.

Both sides arrive in batches in the same key order, and the diff is a merge join done a
stretch of keys at a time: a batch of members is matched with the held members up to its
last key, found by bisection (a few key comparisons a batch, not one a member), by dict
lookups. Memory holds about a batch of each side, whatever the audience's size (DESIGN
§5.1, step 2).

A batch that came as lines of text (`Lines`) is matched by its members' row digests first
(`app.sync.row_digest`): a member whose digest is the one held is unchanged, known without
decoding its row, and only the others are decoded, mapped and fingerprinted (`settle`). When
the stretch holds the same keys on both sides (a rerun, however many rows changed), the
match is a comparison of two lists, in C.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from itertools import compress
from operator import itemgetter, ne
from typing import Any

Payload = dict[str, Any]
SortKey = Callable[[str], Any]
#: A held member: its key, the fingerprint it was sent with, the digest of its source line
#: (None: not known).
Held = tuple[str, str, bytes | None]

_key = itemgetter(0)
_digest = itemgetter(2)


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
    #: The digest of each member's source line (None: the rows came without lines).
    digests: Sequence[bytes | None] | None = None

    def payloads_at(self, indexes: Sequence[int]) -> list[Payload]:
        """The payloads of the members at `indexes`."""
        if self.payloads is not None:
            return [self.payloads[i] for i in indexes]
        assert self.mapped is not None
        return list(map(self.mapped, [self.rows[i] for i in indexes]))


@dataclass(frozen=True)
class Lines:
    """A batch of the audience known by each member's key and line digest; the rest of a
    member is made only when `settle` is asked for it."""

    #: The members' keys, in key order, none twice and none null.
    keys: Sequence[str]
    digests: Sequence[bytes]
    #: The `Members` (with their `digests`) of the rows at some positions of the batch.
    settle: Callable[[list[int]], Members]

    def parts(self, size: int) -> list[Lines]:
        """The batch as consecutive parts of at most `size` members, each settling its own."""
        if len(self.keys) <= size:
            return [self]
        return [
            Lines(
                self.keys[start : start + size],
                self.digests[start : start + size],
                partial(_settle_from, self.settle, start),
            )
            for start in range(0, len(self.keys), size)
        ]


def _settle_from(
    settle: Callable[[list[int]], Members], start: int, positions: list[int]
) -> Members:
    return settle([start + position for position in positions])


@dataclass(frozen=True)
class Stretch:
    """The plan of one stretch of keys: every member of a batch, and every held member whose
    key falls in the same stretch."""

    members: Members
    #: The fingerprint held for each member (None: not held, an addition).
    held: list[str | None]
    #: (key, held fingerprint) of the held members that are no longer members, in key order.
    gone: list[tuple[str, str]]
    #: Members known unchanged by their line's digest, not among `members`.
    unchanged: int = 0
    #: The digest held for each member (None: not held, or held without one).
    held_digests: Sequence[bytes | None] | None = None
    #: The stretch's last key, when its members do not say (some were known unchanged).
    bound: str | None = None

    @property
    def last_key(self) -> str | None:
        """The stretch's last key (None when it holds no key)."""
        if self.bound is not None:
            return self.bound
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
    members: AsyncIterator[Members | Lines],
    held: AsyncIterator[Sequence[Held]],
    sort_key: SortKey = str,
) -> AsyncIterator[Stretch]:
    """One stretch per batch of members, then the held members past the last one.

    `members` and `held` (batches of (key, fingerprint, digest)) must both be sorted by
    `sort_key` and free of duplicate keys; the caller weeds out invalid and duplicate members
    first.
    """
    pending: list[Held] = []  # held members read but not planned yet
    more_held = True

    def key_of(entry: Held) -> Any:
        return sort_key(entry[0])

    async for batch in _in_parts(members):
        if not batch.keys:
            yield Stretch(batch if isinstance(batch, Members) else Members(), [], [])
            continue
        bound = sort_key(batch.keys[-1])
        while more_held and (not pending or key_of(pending[-1]) <= bound):
            more = await anext(held, None)
            if more is None:
                more_held = False
            else:
                pending.extend(more)
        cut = bisect_right(pending, bound, key=key_of)
        stretch = pending[:cut]
        del pending[:cut]
        if isinstance(batch, Lines):
            yield _lines_stretch(batch, stretch)
            continue
        matched = {entry[0]: entry for entry in stretch}
        pop = matched.pop
        entries = [pop(key, None) for key in batch.keys]
        yield _stretch(batch, entries, matched)
    while pending or more_held:  # the members are done: what is still held has left
        if pending:
            yield Stretch(Members(), [], [(key, fp) for key, fp, _ in pending])
            pending = []
        more = await anext(held, None) if more_held else None
        if more is None:
            more_held = False
        else:
            pending = list(more)


#: The most members of a batch of lines in one stretch. Settling a stretch (decoding, mapping
#: and fingerprinting the rows whose digest is not held) runs without a pause: 5 000 rows
#: kept the event loop, and so the commits' round trips and the deliveries, waiting about
#: 25 ms at a time. Lines known unchanged cost next to nothing however they are cut.
STRETCH = 1000


async def _in_parts(batches: AsyncIterator[Members | Lines]) -> AsyncIterator[Members | Lines]:
    async for batch in batches:
        if isinstance(batch, Lines):
            for part in batch.parts(STRETCH):
                yield part
        else:
            yield batch


def _stretch(
    members: Members, entries: list[Held | None], unmatched: Mapping[str, Held], **more: Any
) -> Stretch:
    """The stretch of `members`, given the held entry of each (None: not held) and the held
    entries no member matched."""
    return Stretch(
        members,
        [None if entry is None else entry[1] for entry in entries],
        [(key, entry[1]) for key, entry in unmatched.items()],
        held_digests=(
            None
            if members.digests is None
            else [None if entry is None else entry[2] for entry in entries]
        ),
        **more,
    )


def _lines_stretch(batch: Lines, held: list[Held]) -> Stretch:
    """The stretch of a batch of lines: its members whose digest is held are unchanged; the
    others are settled and planned as any member."""
    keys, digests = batch.keys, batch.digests
    if len(held) == len(keys) and list(map(_key, held)) == keys:  # the same keys: compare
        changed = list(compress(range(len(keys)), map(ne, map(_digest, held), digests)))
        by_key = {held[i][0]: held[i] for i in changed}
    else:
        by_key = {entry[0]: entry for entry in held}
        changed = []
        for i, (key, digest) in enumerate(zip(keys, digests, strict=True)):
            entry = by_key.get(key)
            if entry is not None and entry[2] == digest:
                del by_key[key]
            else:
                changed.append(i)
    settled = batch.settle(changed) if changed else Members()
    pop = by_key.pop
    entries = [pop(key, None) for key in settled.keys]
    # Left in key order: held members not in the batch, and those settling found invalid.
    return _stretch(
        replace(settled, size=len(keys)),
        entries,
        by_key,
        unchanged=len(keys) - len(changed),
        bound=keys[-1],
    )
