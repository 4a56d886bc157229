"""Mapping, fingerprints and the merge-join plan, against a plain set-based reference."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from app.sync.mapping import fingerprint, map_row
from app.sync.plan import Change, Member, plan_diff

T = TypeVar("T")


async def aiter_of(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def test_map_row_follows_the_mapping() -> None:
    row = {"email": "a@b.co", "phone": "+331", "ignored": 1}
    mapping = [
        {"source_column": "email", "destination_field": "hashedEmail"},
        {"source_column": "missing", "destination_field": "x"},
    ]
    assert map_row(row, mapping) == {"hashedEmail": "a@b.co", "x": None}


def test_fingerprint_ignores_key_order_and_numeric_spelling() -> None:
    assert fingerprint({"a": 1, "b": "x"}) == fingerprint({"b": "x", "a": 1.0})
    assert fingerprint({"v": Decimal("5.00")}) == fingerprint({"v": Decimal("5")})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    when = datetime(2024, 1, 1, tzinfo=UTC)
    assert fingerprint({"t": when}) == fingerprint({"t": when.isoformat()})


async def run_plan(current: dict[int, str], held: dict[int, str]) -> list[tuple[Change, str]]:
    members = [Member(str(k), {"v": v}, v) for k, v in sorted(current.items())]
    pairs = [(str(k), v) for k, v in sorted(held.items())]
    return [
        (step.change, step.key)
        async for step in plan_diff(aiter_of(members), aiter_of(pairs), sort_key=int)
    ]


async def test_every_change_kind() -> None:
    steps = await run_plan({1: "a", 2: "b", 4: "d"}, {2: "b", 3: "c", 4: "x"})
    assert steps == [
        (Change.add, "1"),
        (Change.unchanged, "2"),
        (Change.remove, "3"),
        (Change.update, "4"),
    ]


async def test_numeric_keys_in_numeric_order() -> None:
    steps = await run_plan({9: "a", 10: "b"}, {10: "b"})
    assert steps == [(Change.add, "9"), (Change.unchanged, "10")]


keyed = st.dictionaries(st.integers(0, 60), st.sampled_from(["a", "b", "c"]), max_size=40)


@settings(max_examples=200, deadline=None)
@given(current=keyed, held=keyed)
async def test_plan_matches_the_set_reference(
    current: dict[int, str], held: dict[int, str]
) -> None:
    steps = await run_plan(current, held)
    expected = {str(k): Change.add for k in current.keys() - held.keys()}
    expected |= {str(k): Change.remove for k in held.keys() - current.keys()}
    expected |= {
        str(k): Change.unchanged if current[k] == held[k] else Change.update
        for k in current.keys() & held.keys()
    }
    assert dict((key, change) for change, key in steps) == expected
    assert [int(key) for _, key in steps] == sorted(int(key) for _, key in steps)
