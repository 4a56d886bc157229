"""Split groups: the DESIGN §5.3 bucket, stable across processes, fair shares, minimal moves."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.sources.splits import (
    BUCKETS,
    SplitLayout,
    basis_points_of,
    bucket,
    moved_buckets,
    relayout,
)

KEYS = [str(i) for i in range(100_000)]
SALT = "5f1c2a9e0b7d4c3a"


def test_the_bucket_is_the_documented_hash() -> None:
    for key in ["42", "alice@example.com", "ünï👍", ""]:
        digest = hashlib.sha256((SALT + ":" + key).encode("utf-8")).digest()
        assert (
            bucket(SALT, key) == int.from_bytes(digest[:8], byteorder="big", signed=False) % 10_000
        )
    # Pinned: a change here would reshuffle every customer's split groups.
    assert [bucket("salt", key) for key in ["1", "2", "alice"]] == [4688, 9801, 8627]


def test_assignment_is_the_same_in_another_process() -> None:
    layout = SplitLayout.fresh([("A", 4500), ("B", 4500), ("control", 1000)])
    keys = [*KEYS[:2000], "alice@example.com", "ünï👍"]
    script = (
        "import json, sys\n"
        "from app.sources.splits import SplitLayout\n"
        "layout = SplitLayout.fresh([('A', 4500), ('B', 4500), ('control', 1000)])\n"
        "keys = json.load(sys.stdin)\n"
        f"print(json.dumps([layout.group_of({SALT!r}, k) for k in keys]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(keys),
        capture_output=True,
        text=True,
        check=True,
        env=env,
        timeout=60,
    )
    assert json.loads(result.stdout) == [layout.group_of(SALT, key) for key in keys]


def test_shares_are_within_tolerance_on_100_000_keys() -> None:
    layout = SplitLayout.fresh([("A", 4500), ("B", 4500), ("control", 1000)])
    counts = Counter(layout.group_of(SALT, key) for key in KEYS)
    for group, expected in {"A": 0.45, "B": 0.45, "control": 0.10}.items():
        assert abs(counts[group] / len(KEYS) - expected) < 0.01  # > 6 standard deviations


def test_a_fresh_layout_is_contiguous_in_order() -> None:
    layout = SplitLayout.fresh([("A", 4500), ("B", 4500), ("control", 1000)])
    assert layout.ranges == {"A": ((0, 4500),), "B": ((4500, 9000),), "control": ((9000, 10_000),)}
    assert layout.group_of_bucket(0) == "A"
    assert layout.group_of_bucket(8999) == "B"
    assert layout.group_of_bucket(9999) == "control"


def test_a_change_between_two_groups_moves_only_their_difference() -> None:
    before = SplitLayout.fresh([("A", 4500), ("B", 4500), ("control", 1000)])
    after = relayout(before, [("A", 4000), ("B", 4500), ("control", 1500)])
    assert moved_buckets(before, after) == 500
    assert after.ranges["B"] == before.ranges["B"]  # B is not touched
    old = {key: before.group_of(SALT, key) for key in KEYS}
    moved = Counter(
        (old[key], after.group_of(SALT, key))
        for key in KEYS
        if old[key] != after.group_of(SALT, key)
    )
    assert set(moved) == {("A", "control")}
    assert abs(moved[("A", "control")] / len(KEYS) - 0.05) < 0.01
    # Contiguous-in-order re-layout would also have moved B's members: 10 % instead of 5 %.
    assert (
        moved_buckets(before, SplitLayout.fresh([("A", 4000), ("B", 4500), ("control", 1500)]))
        == 1000
    )


SHARES = st.lists(st.integers(1, 50), min_size=1, max_size=5).map(
    lambda weights: _normalise([(f"g{i}", w) for i, w in enumerate(weights)])
)


def _normalise(weights: list[tuple[str, int]]) -> list[tuple[str, int]]:
    total = sum(w for _, w in weights)
    shares = [(name, w * BUCKETS // total) for name, w in weights]
    name, points = shares[-1]
    shares[-1] = (name, points + BUCKETS - sum(p for _, p in shares))
    return shares


@settings(max_examples=150, deadline=None)
@given(first=SHARES, changes=st.lists(st.tuples(SHARES, st.booleans()), min_size=1, max_size=4))
def test_relayout_moves_exactly_the_unavoidable_buckets(
    first: list[tuple[str, int]], changes: list[tuple[list[tuple[str, int]], bool]]
) -> None:
    layout = SplitLayout.fresh(first)
    for shares, rename_one in changes:
        if rename_one:  # a group replaced by a new one
            shares = [("new", shares[0][1]), *shares[1:]]
        after = relayout(layout, shares)
        covered = sorted(
            b for ranges in after.ranges.values() for s, e in ranges for b in range(s, e)
        )
        assert covered == list(range(BUCKETS))
        assert {group: after.basis_points(group) for group in after.groups} == dict(shares)
        decreases = sum(
            max(0, layout.basis_points(group) - dict(shares).get(group, 0))
            for group in layout.groups
        )
        assert moved_buckets(layout, after) == decreases
        layout = after


def test_layouts_round_trip_through_json() -> None:
    layout = relayout(
        SplitLayout.fresh([("A", 3000), ("B", 3000), ("C", 4000)]),
        [("A", 2500), ("B", 3500), ("C", 4000)],
    )
    stored = json.loads(json.dumps(layout.to_json()))
    assert SplitLayout.from_json(stored, ["A", "B", "C"]) == layout


@pytest.mark.parametrize(
    ("percentages", "points"),
    [
        ([45, 45, 10], [4500, 4500, 1000]),
        ([33.33, 33.33, 33.34], [3333, 3333, 3334]),
        ([100], [10_000]),
        ([], []),
    ],
)
def test_percentages_become_basis_points(percentages: list[Any], points: list[int]) -> None:
    assert basis_points_of(percentages) == points


@pytest.mark.parametrize(
    ("percentages", "field", "message"),
    [
        ([45, 45], "split_groups", "sum to 90, not 100"),
        ([50, 50.5], "split_groups", "sum to 100.5, not 100"),
        ([100, 0], "split_groups[1].percentage", "above 0"),
        ([101], "split_groups[0].percentage", "at most 100"),
        (["50", 50], "split_groups[0].percentage", "a number"),
        ([True, 99], "split_groups[0].percentage", "a number"),
        ([33.333, 66.667], "split_groups[0].percentage", "two decimals"),
        ([float("nan"), 100], "split_groups[0].percentage", "a number"),
        ([None, 100], "split_groups[0].percentage", "a number"),
    ],
)
def test_bad_percentages_are_named(percentages: list[Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        basis_points_of(percentages)
    assert caught.value.http_status == 422
    assert caught.value.details[0].field == field
    assert message in caught.value.details[0].message


def test_layouts_must_cover_every_bucket() -> None:
    with pytest.raises(ValueError):
        SplitLayout.fresh([("A", 5000)])
    with pytest.raises(ValueError):
        relayout(SplitLayout.fresh([("A", 10_000)]), [("A", 6000), ("B", 5000)])
