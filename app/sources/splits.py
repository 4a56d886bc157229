"""Split groups (DESIGN §5.3): which A/B group or holdout each member falls in.

A member's bucket is the first 8 bytes of SHA-256(`split_salt` + ":" + member key) read as an
unsigned big-endian integer, mod 10 000: one bucket per basis point. A layout gives each group a
set of bucket ranges; `SplitLayout.fresh` gives the groups contiguous ranges in their order
(the first group `[0, b1)`, the next `[b1, b1 + b2)`, …).

`relayout` changes the percentages while moving as few members as possible. A member moves
exactly when its bucket changes owner, so the fewest buckets must change: a group that shrinks
gives up the buckets at the end of its ranges, a removed group gives up all of its buckets, and
the groups that grow (or are new) take the freed buckets, lowest first, in the groups' order;
every other bucket stays put. The buckets moved are then the sum of the decreases, which no
layout can beat. The price: after a change a group may own several ranges, so the layout is
state, to be stored with the groups (`to_json` / `from_json`), not recomputed from percentages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property
from typing import Any, Generic, TypeVar

from app.errors import FieldError, InvalidInput

BUCKETS = 10_000
K = TypeVar("K", bound=Hashable)
Range = tuple[int, int]  #: half-open `[start, stop)` of buckets


def bucket(salt: str, member_key: str) -> int:
    digest = hashlib.sha256(f"{salt}:{member_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


@dataclass(frozen=True)
class SplitLayout(Generic[K]):
    """Each group's bucket ranges, groups in their order; together they cover every bucket."""

    ranges: Mapping[K, tuple[Range, ...]]

    @classmethod
    def fresh(cls, shares: Sequence[tuple[K, int]]) -> SplitLayout[K]:
        """Contiguous ranges in the groups' order, from `(group, basis_points)` pairs."""
        _check_total(shares)
        ranges: dict[K, tuple[Range, ...]] = {}
        start = 0
        for group, points in shares:
            ranges[group] = ((start, start + points),) if points else ()
            start += points
        return cls(ranges)

    @property
    def groups(self) -> list[K]:
        return list(self.ranges)

    def basis_points(self, group: K) -> int:
        return sum(stop - start for start, stop in self.ranges.get(group, ()))

    @cached_property
    def _owners(self) -> tuple[K | None, ...]:
        owners: list[K | None] = [None] * BUCKETS
        for group, ranges in self.ranges.items():
            for start, stop in ranges:
                owners[start:stop] = [group] * (stop - start)
        return tuple(owners)

    def group_of_bucket(self, index: int) -> K:
        owner = self._owners[index]
        if owner is None:
            raise ValueError(f"bucket {index} belongs to no group")
        return owner

    def group_of(self, salt: str, member_key: str) -> K:
        """The group of a member, given the audience's split salt."""
        return self.group_of_bucket(bucket(salt, member_key))

    def to_json(self) -> dict[str, list[list[int]]]:
        return {
            str(group): [[start, stop] for start, stop in r] for group, r in self.ranges.items()
        }

    @classmethod
    def from_json(
        cls, data: Mapping[str, Sequence[Sequence[int]]], groups: Sequence[K]
    ) -> SplitLayout[K]:
        """The stored layout, keyed back by `groups` (matched on `str(group)`)."""
        by_name = {str(group): group for group in groups}
        return cls({by_name[name]: tuple((a, b) for a, b in r) for name, r in data.items()})


def relayout(current: SplitLayout[K], shares: Sequence[tuple[K, int]]) -> SplitLayout[K]:
    """The layout for the new `(group, basis_points)` shares that moves the fewest buckets."""
    _check_total(shares)
    targets = dict(shares)
    kept: dict[K, list[int]] = {}
    for group, group_ranges in current.ranges.items():
        owned = [b for start, stop in sorted(group_ranges) for b in range(start, stop)]
        kept[group] = owned[: targets.get(group, 0)]  # a shrinking group gives up its end
    held = {b for owned in kept.values() for b in owned}
    free = [b for b in range(BUCKETS) if b not in held]
    layout: dict[K, tuple[Range, ...]] = {}
    for group, points in shares:
        owned = kept.get(group, [])
        need = points - len(owned)
        layout[group] = _compress(sorted(owned + free[:need]))
        free = free[need:]
    return SplitLayout(layout)


def moved_buckets(before: SplitLayout[Any], after: SplitLayout[Any]) -> int:
    """How many buckets changed group (each carries about 1/10 000 of the members)."""
    return sum(1 for b in range(BUCKETS) if before._owners[b] != after._owners[b])


def basis_points_of(percentages: Sequence[object], *, field: str = "split_groups") -> list[int]:
    """Percentages (0 < p <= 100, at most two decimals) as basis points summing to 10 000.

    An InvalidInput names each bad `field[i].percentage`, or `field` when the sum is off.
    """
    errors: list[FieldError] = []
    points: list[int] = []
    for index, raw in enumerate(percentages):
        value = _decimal(raw)
        if value is None or not 0 < value <= 100 or (value * 100) % 1:
            message = "a percentage is a number above 0 and at most 100, with two decimals at most"
            errors.append(FieldError(f"{field}[{index}].percentage", message))
        else:
            points.append(int(value * 100))
    if not errors and points and sum(points) != BUCKETS:
        total = Decimal(sum(points)) / 100
        errors.append(FieldError(field, f"the percentages sum to {total}, not 100"))
    if errors:
        raise InvalidInput(f"{errors[0].field}: {errors[0].message}", errors)
    return points


def _decimal(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        return None
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _check_total(shares: Sequence[tuple[Any, int]]) -> None:
    if any(points < 0 for _, points in shares) or sum(p for _, p in shares) != BUCKETS:
        raise ValueError(f"split shares must be non-negative and sum to {BUCKETS} basis points")


def _compress(buckets: Sequence[int]) -> tuple[Range, ...]:
    ranges: list[Range] = []
    for b in buckets:
        if ranges and ranges[-1][1] == b:
            ranges[-1] = (ranges[-1][0], b + 1)
        else:
            ranges.append((b, b + 1))
    return tuple(ranges)
