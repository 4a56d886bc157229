"""The membership stream: key order, batches, split groups, early exit, flat memory."""

from __future__ import annotations

import gc
import tracemalloc
from contextlib import aclosing

import pytest

from app.errors import InvalidInput
from app.sources.filters import AudienceQuery, compile_audience
from app.sources.membership import SplitSelection, count_split_groups, member_key, stream_members
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from app.sources.splits import SplitLayout, relayout
from tests.sources.support import NOW, DictResolver, RealSource, collect

NUMBERED = [("id", "int"), ("name", "text"), ("score", "int")]
NUMBER_ROWS = [(i, f"n{i}", i % 7) for i in [5, 3, 100, 42, 7, 1, 2, 8, 10, 9, 11, 64, 6, 4]]
KEYED = [("key", "ci_text"), ("score", "int")]
TEXT_KEYS = ["b", "B", "a", "A", "10", "9", "é", "e", "Z", "zz", "👍", "_", "%", " x", None]
SALT = "feedface"
LAYOUT = SplitLayout.fresh([("A", 4000), ("B", 4000), ("holdout", 2000)])


@pytest.fixture(scope="session")
async def members_models(source: RealSource) -> tuple[ModelSpec, ModelSpec]:
    text_rows = [(key, i) for i, key in enumerate(TEXT_KEYS)]
    await source.create_tables([("numbered", NUMBERED, NUMBER_ROWS), ("keyed", KEYED, text_rows)])
    if (
        source.dialect == "postgres"
    ):  # a linguistic collation: keys must still come in code-point order
        await source.execute('ALTER TABLE keyed ALTER COLUMN key TYPE TEXT COLLATE "en-US-x-icu"')
    return source.model("numbered", NUMBERED), source.model("keyed", KEYED, primary_key="key")


async def audience(model: ModelSpec, raw: dict[str, object] | None = None) -> AudienceQuery:
    return await compile_audience(raw or {}, model, DictResolver(), now=NOW)


async def test_members_come_in_key_order_across_batches(
    source: RealSource, members_models: tuple[ModelSpec, ModelSpec]
) -> None:
    numbered, _ = members_models
    query = await audience(numbered, {"column": "score", "op": "neq", "value": 0})
    async with source.open() as connection:
        members = await collect(stream_members(connection, query, batch_size=3))
    expected = sorted(row for row in NUMBER_ROWS if row[2] != 0)
    assert [key for key, _ in members] == [str(row[0]) for row in expected]
    assert [row for _, row in members] == [{"id": i, "name": n, "score": s} for i, n, s in expected]


async def test_text_keys_come_in_code_point_order_with_nulls_last(
    source: RealSource, members_models: tuple[ModelSpec, ModelSpec]
) -> None:
    _, keyed = members_models
    async with source.open() as connection:
        members = await collect(
            stream_members(connection, await audience(keyed), columns=[], batch_size=4)
        )
    present = sorted(key for key in TEXT_KEYS if key is not None)
    assert [key for key, _ in members] == [*present, None]
    assert members[0][1] == {"key": present[0]}


async def test_chosen_columns_only(
    source: RealSource, members_models: tuple[ModelSpec, ModelSpec]
) -> None:
    numbered, _ = members_models
    query = await audience(numbered)
    async with source.open() as connection:
        members = await collect(stream_members(connection, query, columns=["score"]))
    assert all(set(row) == {"id", "score"} for _, row in members)
    with pytest.raises(InvalidInput) as caught:
        query.members(["score", "nope"])
    assert caught.value.details[0].field == "columns"


async def test_a_split_group_streams_only_its_members(
    source: RealSource, members_models: tuple[ModelSpec, ModelSpec]
) -> None:
    _, keyed = members_models
    query = await audience(keyed)
    layout = relayout(LAYOUT, [("A", 3000), ("B", 5000), ("holdout", 2000)])
    async with source.open() as connection:
        everyone = [key for key, _ in await collect(stream_members(connection, query))]
        groups = {
            group: [
                key
                for key, _ in await collect(
                    stream_members(connection, query, split=SplitSelection(SALT, layout, group))
                )
            ]
            for group in layout.groups
        }
        sizes = await count_split_groups(connection, query, salt=SALT, layout=layout)
    keyed_members = [key for key in everyone if key is not None]
    assert sorted(k for keys in groups.values() for k in keys) == sorted(keyed_members)
    for group, keys in groups.items():
        assert keys == [k for k in keyed_members if layout.group_of(SALT, k) == group]
        assert sizes[group] == len(keys)


async def test_leaving_early_keeps_the_connection_usable(
    source: RealSource, members_models: tuple[ModelSpec, ModelSpec]
) -> None:
    numbered, _ = members_models
    query = await audience(numbered)
    async with source.open() as connection:
        async with aclosing(stream_members(connection, query, batch_size=2)) as members:
            async for key, _ in members:
                assert key == "1"
                break
        assert (await connection.fetch(query.count())).rows[0][0] == len(NUMBER_ROWS)


def test_member_keys_are_text() -> None:
    import uuid
    from datetime import date

    uid = uuid.uuid4()
    assert [member_key(v) for v in [None, 7, "a", uid, b"\x01\xff", date(2024, 1, 2)]] == [
        None,
        "7",
        "a",
        str(uid),
        "01ff",
        "2024-01-02",
    ]


ROWS, WIDTH = 12_000, 5000
GENERATED = {
    "sqlite": (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        "SELECT i AS id, printf('%.{width}d', i) AS payload FROM n"
    ),
    "duckdb": (
        "SELECT i AS id, lpad(i::VARCHAR, {width}, '0') AS payload FROM range(1, {rows} + 1) t(i)"
    ),
    "postgres": (
        "SELECT i AS id, lpad(i::text, {width}, '0') AS payload FROM generate_series(1, {rows}) i"
    ),
}


async def test_streaming_keeps_memory_flat(source: RealSource) -> None:
    """12 000 rows of 5 kB (60 MB as Python strings) stream through in a few batches' worth."""
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("payload", ColumnType.string)),
        query=GENERATED[source.dialect].format(rows=ROWS, width=WIDTH),
    )
    query = await audience(model, {"column": "payload", "op": "is_not_null"})
    async with source.open() as connection:
        gc.collect()
        tracemalloc.start()
        try:
            seen, last = 0, 0
            async for key, row in stream_members(connection, query, batch_size=1000):
                assert int(key or 0) > last
                last = int(key or 0)
                seen += len(row["payload"])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == ROWS * WIDTH
    assert peak < 25_000_000, f"peak {peak / 1e6:.1f} MB"
