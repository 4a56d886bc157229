"""Mapping, fingerprints, the members of a batch and the stretch-by-stretch plan, against plain
one-member references."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from app.destinations.identifiers import InvalidValue
from app.sources.membership import LineBatch
from app.sync import plan
from app.sync.mapping import fingerprint, fingerprints, map_row, row_fingerprints, row_mapper
from app.sync.members import member_batches
from app.sync.plan import Change, Lines, Members, plan_stretches
from app.sync.row_digest import RowDigests, recipe

T = TypeVar("T")


async def aiter_of(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def cut(items: Sequence[T], sizes: Sequence[int]) -> list[list[T]]:
    """`items` in batches of the given sizes (cycled), the way a stream hands them over."""
    batches, start, index = [], 0, 0
    while start < len(items):
        size = sizes[index % len(sizes)]
        batches.append(list(items[start : start + size]))
        start, index = start + size, index + 1
    return batches


def test_map_row_follows_the_mapping() -> None:
    row = {"email": "a@b.co", "phone": "+331", "ignored": 1}
    mapping_ = [
        {"source_column": "email", "destination_field": "hashedEmail"},
        {"source_column": "missing", "destination_field": "x"},
    ]
    assert map_row(row, mapping_) == {"hashedEmail": "a@b.co", "x": None}
    assert row_mapper(mapping_)(row) == map_row(row, mapping_)
    assert row_fingerprints([row, {}], mapping_) == [
        fingerprint(map_row(row, mapping_)),
        fingerprint({"hashedEmail": None, "x": None}),
    ]


def test_fingerprint_ignores_key_order_and_numeric_spelling() -> None:
    assert fingerprint({"a": 1, "b": "x"}) == fingerprint({"b": "x", "a": 1.0})
    assert fingerprint({"v": Decimal("5.00")}) == fingerprint({"v": Decimal("5")})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    when = datetime(2024, 1, 1, tzinfo=UTC)
    assert fingerprint({"t": when}) == fingerprint({"t": when.isoformat()})


def test_fingerprints_are_those_stored_before() -> None:
    """Held fingerprints stay valid: the text hashed is the canonical JSON it always was."""
    expected = hashlib.sha256(b'{"email":"a@x","n":3,"plan":"pro","v":"1.5"}').hexdigest()
    payload = {"plan": "pro", "email": "a@x", "n": 3.0, "v": Decimal("1.50")}
    assert fingerprints([payload, payload]) == [expected, expected] == [fingerprint(payload)] * 2


def test_fields_named_with_percent_signs_and_quotes() -> None:
    payloads = [{'a%s"b': 1, "%%": "x\n%s", "": None}, {'a%s"b': 2, "%%": "é", "": True}]
    assert fingerprints(payloads) == [fingerprint(p) for p in payloads]


values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
    st.lists(st.one_of(st.text(), st.integers(), st.dates()), max_size=3),
)
payload = st.dictionaries(st.sampled_from(["email", "plan", "x", "é"]), values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(payloads=st.lists(payload, max_size=12))
def test_fingerprints_equal_fingerprint_of_each(payloads: list[dict[str, Any]]) -> None:
    assert fingerprints(payloads) == [fingerprint(p) for p in payloads]


@settings(max_examples=300, deadline=None)
@given(column=st.lists(values, max_size=12), other=values)
def test_row_fingerprints_equal_fingerprint_of_each_mapped_row(
    column: list[Any], other: Any
) -> None:
    """One field's values of every type side by side (the columns of a batch)."""
    field_mapping = [
        {"source_column": "c", "destination_field": "z"},
        {"source_column": "o", "destination_field": "a"},
    ]
    rows = [{"c": value, "o": other} for value in column]
    expected = [fingerprint(map_row(row, field_mapping)) for row in rows]
    assert row_fingerprints(rows, field_mapping) == expected


def test_fingerprints_of_dates_and_decimals() -> None:
    payloads = [{"d": date(2024, 1, 2), "v": Decimal("1.50"), "f": 2.0}, {"d": None}]
    assert fingerprints(payloads) == [fingerprint(p) for p in payloads]


async def members_of(
    rows: list[tuple[str | None, dict[str, Any]]], sizes: Sequence[int], prepare: Any = None
) -> list[Members]:
    field_mapping = [{"source_column": "v", "destination_field": "v"}]
    stream = member_batches(aiter_of(cut(rows, sizes)), field_mapping, prepare)
    return [batch async for batch in stream]


async def test_duplicate_keys_across_batches_and_null_keys_are_invalid() -> None:
    rows: list[tuple[str | None, dict[str, Any]]] = [
        ("1", {"v": "a"}),
        ("2", {"v": "b"}),
        ("2", {"v": "b2"}),
        ("2", {"v": "b3"}),
        ("3", {"v": "c"}),
        (None, {"v": "n"}),
        (None, {"v": "m"}),
    ]
    for sizes in ([1], [2], [3], [7], [2, 1]):
        batches = await members_of(rows, sizes)
        assert [k for b in batches for k in b.keys] == ["1", "3"]
        assert sum(b.size for b in batches) == len(rows)
        invalid = [i for b in batches for i in b.invalid]
        assert sorted(invalid, key=str) == sorted(
            [("2", "duplicate key")] * 3 + [(None, "null key")] * 2, key=str
        )
        fps = [fp for b in batches for fp in b.fingerprints]
        assert fps == [fingerprint({"v": "a"}), fingerprint({"v": "c"})]


async def test_a_value_normalisation_refuses_is_invalid() -> None:
    def prepare(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["v"] == "bad":
            raise InvalidValue("v is bad")
        return {"v": payload["v"].upper()}

    rows: list[tuple[str | None, dict[str, Any]]] = [
        ("1", {"v": "a"}),
        ("2", {"v": "bad"}),
        ("3", {"v": "c"}),
    ]
    batches = await members_of(rows, [5], prepare)
    assert [k for b in batches for k in b.keys] == ["1", "3"]
    assert [p for b in batches for p in b.payloads_at(range(len(b.keys)))] == [
        {"v": "A"},
        {"v": "C"},
    ]
    assert [i for b in batches for i in b.invalid] == [("2", "v is bad")]
    assert sum(b.size for b in batches) == 3


async def run_plan(
    current: dict[int, str],
    held: dict[int, str],
    member_sizes: Sequence[int] = (3,),
    held_sizes: Sequence[int] = (2,),
) -> list[tuple[Change, str]]:
    keys = [str(k) for k in sorted(current)]
    members = [
        Members(b, [current[int(k)] for k in b], [{"v": current[int(k)]} for k in b], size=len(b))
        for b in cut(keys, member_sizes)
    ]
    pairs = cut([(str(k), v, None) for k, v in sorted(held.items())], held_sizes)
    steps: list[tuple[int, Change, str]] = []
    async for stretch in plan_stretches(aiter_of(members), aiter_of(pairs), sort_key=int):
        changes = zip(stretch.members.keys, stretch.changes(), strict=True)
        steps.extend((int(k), c, k) for k, c in changes)
        steps.extend((int(k), Change.remove, k) for k, _ in stretch.gone)
        assert all(int(k) <= int(stretch.last_key or 0) for k, _ in stretch.gone)
    return [(change, key) for _, change, key in sorted(steps)]


async def test_every_change_kind() -> None:
    steps = await run_plan({1: "a", 2: "b", 4: "d"}, {2: "b", 3: "c", 4: "x"})
    assert steps == [
        (Change.add, "1"),
        (Change.unchanged, "2"),
        (Change.remove, "3"),
        (Change.update, "4"),
    ]


async def test_numeric_keys_in_numeric_order() -> None:
    steps = await run_plan({9: "a", 10: "b"}, {10: "b", 11: "c"}, member_sizes=[1])
    assert steps == [(Change.add, "9"), (Change.unchanged, "10"), (Change.remove, "11")]


keyed = st.dictionaries(st.integers(0, 60), st.sampled_from(["a", "b", "c"]), max_size=40)
sizes = st.lists(st.integers(1, 7), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(current=keyed, held=keyed, member_sizes=sizes, held_sizes=sizes)
async def test_plan_matches_the_set_reference(
    current: dict[int, str], held: dict[int, str], member_sizes: list[int], held_sizes: list[int]
) -> None:
    steps = await run_plan(current, held, member_sizes, held_sizes)
    expected = {str(k): Change.add for k in current.keys() - held.keys()}
    expected |= {str(k): Change.remove for k in held.keys() - current.keys()}
    expected |= {
        str(k): Change.unchanged if current[k] == held[k] else Change.update
        for k in current.keys() & held.keys()
    }
    assert dict((key, change) for change, key in steps) == expected
    assert len(steps) == len(expected)


def digest_of(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()[:16]


@settings(max_examples=300, deadline=None)
@given(
    current=st.dictionaries(st.integers(0, 60), st.sampled_from(["a", "b", "c", "bad"])),
    held=st.dictionaries(
        st.integers(0, 60), st.tuples(st.sampled_from(["a", "b", "c"]), st.booleans())
    ),
    member_sizes=sizes,
    held_sizes=sizes,
    stretch=st.sampled_from([plan.STRETCH, 1, 3]),
)
async def test_lines_plan_as_members_do_and_settle_only_what_their_digest_leaves_open(
    current: dict[int, str],
    held: dict[int, tuple[str, bool]],
    member_sizes: list[int],
    held_sizes: list[int],
    stretch: int,
) -> None:
    """A batch of lines: the members whose digest is the one held are unchanged without
    being settled; the others are settled (and a held member that settles invalid leaves).
    Held digests may be stale (False): those members are fingerprinted. A batch longer
    than a stretch is planned in parts, with the same result."""
    with patch.object(plan, "STRETCH", stretch):
        await lines_plan_as_members_do(current, held, member_sizes, held_sizes)


async def lines_plan_as_members_do(
    current: dict[int, str],
    held: dict[int, tuple[str, bool]],
    member_sizes: list[int],
    held_sizes: list[int],
) -> None:
    settled: list[str] = []

    def lines_of(keys: list[str]) -> Lines:
        def settle(positions: list[int]) -> Members:
            picked = [keys[i] for i in positions]
            settled.extend(picked)
            valid = [k for k in picked if current[int(k)] != "bad"]
            return Members(
                valid,
                [current[int(k)] for k in valid],
                [{"v": current[int(k)]} for k in valid],
                size=len(picked),
                invalid=[(k, "bad") for k in picked if current[int(k)] == "bad"],
                digests=[digest_of(current[int(k)]) for k in valid],
            )

        return Lines(keys, [digest_of(current[int(k)]) for k in keys], settle)

    keys = [str(k) for k in sorted(current)]
    entries = [
        (str(k), v, digest_of(v) if fresh else b"stale") for k, (v, fresh) in sorted(held.items())
    ]
    changes: dict[str, Change] = {}
    unchanged = invalid = size = 0
    stream = aiter_of([lines_of(b) for b in cut(keys, member_sizes)])
    async for stretch in plan_stretches(stream, aiter_of(cut(entries, held_sizes)), sort_key=int):
        changes |= dict(zip(stretch.members.keys, stretch.changes(), strict=True))
        changes |= {k: Change.remove for k, _ in stretch.gone}
        unchanged += stretch.unchanged
        invalid += len(stretch.members.invalid)
        size += stretch.members.size
        if stretch.members.digests is not None:
            assert stretch.held_digests is not None
            assert len(stretch.held_digests) == len(stretch.members.keys)
    valid = {k: v for k, v in current.items() if v != "bad"}
    expected = {str(k): Change.add for k in valid.keys() - held.keys()}
    expected |= {str(k): Change.remove for k in held.keys() - valid.keys()}
    known = {k for k in valid.keys() & held.keys() if held[k] == (valid[k], True)}
    expected |= {
        str(k): Change.unchanged if valid[k] == held[k][0] else Change.update
        for k in valid.keys() & held.keys()
        if k not in known
    }
    assert changes == expected
    assert unchanged == len(known) and size == len(current)
    assert invalid == len(current) - len(valid)
    assert sorted(settled, key=int) == [str(k) for k in sorted(current.keys() - known)]


def line_batch(rows: list[tuple[str | None, dict[str, Any]]]) -> LineBatch:
    return LineBatch(
        [key for key, _ in rows],
        [f"{key}\t{row['v']}".encode() for key, row in rows],
        "test",
        lambda positions: [rows[i] for i in positions],
    )


async def test_lines_with_a_null_or_repeated_key_are_decoded_and_checked_as_rows() -> None:
    """A batch of lines that holds a null key or a key twice, or shares a key with the next
    batch, is decoded and goes the way of rows: the key's rows are all invalid."""
    rows: list[tuple[str | None, dict[str, Any]]] = [
        ("1", {"v": "a"}),
        ("2", {"v": "b"}),
        ("3", {"v": "c"}),
        ("3", {"v": "c2"}),  # across the first and second batch
        ("4", {"v": "d"}),
        ("5", {"v": "e"}),
        ("6", {"v": "f"}),
        ("7", {"v": "g"}),
        ("7", {"v": "g2"}),  # twice in the fourth batch
        ("8", {"v": "h"}),
        (None, {"v": "n"}),
    ]
    field_mapping = [{"source_column": "v", "destination_field": "v"}]
    digests = RowDigests(recipe(field_mapping, "webhook", {}))
    for sizes_ in ([3, 2, 1, 3, 2], [3], [11], [1]):
        batches = [line_batch(b) for b in cut(rows, sizes_)]
        out = [b async for b in member_batches(aiter_of(batches), field_mapping, None, digests)]
        lines = [b for b in out if isinstance(b, Lines)]
        eager = [b for b in out if isinstance(b, Members)]
        keys = [k for b in out for k in b.keys]
        assert keys == ["1", "2", "4", "5", "6", "8"], sizes_
        invalid = sorted((str(k), reason) for b in eager for k, reason in b.invalid)
        assert invalid == [("3", "duplicate key")] * 2 + [("7", "duplicate key")] * 2 + [
            ("None", "null key")
        ]
        assert sum(b.size for b in eager) + sum(len(b.keys) for b in lines) == len(rows)
        for batch in lines:
            assert list(batch.digests) == digests(
                "test", [f"{k}\t".encode() + row_value(rows, k) for k in batch.keys]
            )
        if sizes_ == [1]:  # every batch of one line with a key of its own stays lines
            assert {k for b in lines for k in b.keys} == {"1", "2", "4", "5", "6", "8"}


def row_value(rows: list[tuple[str | None, dict[str, Any]]], key: str) -> bytes:
    return next(row["v"] for k, row in rows if k == key).encode()


async def test_without_digests_lines_are_decoded_into_members() -> None:
    rows: list[tuple[str | None, dict[str, Any]]] = [("1", {"v": "a"}), ("2", {"v": "b"})]
    field_mapping = [{"source_column": "v", "destination_field": "v"}]
    out = [b async for b in member_batches(aiter_of([line_batch(rows)]), field_mapping, None)]
    assert all(isinstance(b, Members) and b.digests is None for b in out)
    assert [k for b in out for k in b.keys] == ["1", "2"]
    assert [fp for b in out for fp in b.fingerprints] == [
        fingerprint({"v": "a"}),
        fingerprint({"v": "b"}),
    ]
