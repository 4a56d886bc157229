"""Hostile values are data, never SQL: the compiled statement is the same whatever the value, the
result is exactly the rows holding it, and nothing but a 422 ever comes out; on PostgreSQL the
membership stream inlines them into a COPY, and the members are the same rows."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import InvalidInput
from app.sources.connection import SourceConnection
from app.sources.filters import compile_audience
from app.sources.membership import stream_members
from app.sources.model import ModelSpec
from app.sources.postgres_copy import inline_statement
from tests.sources.support import NOW, DictResolver, RealSource, collect, fetch_keys

WEIRD = "we\"ird 'col"
HOSTILE = [
    "'",
    "''",
    '"',
    "'; drop table hostile; --",
    '"; DROP TABLE hostile; --',
    "\\",
    "\\'",
    "a\\",
    "%",
    "_",
    "%_%",
    "a%",
    "_a",
    "$1",
    ":name",
    "?",
    "%(name)s",
    "{0}",
    "\n\r\t",
    "\x1a",
    "日本語",
    "👍🏽",
    "Straße",
    "שָׁלוֹם",
    "e\u0301",
    " ",
    "",
    "x" * 10_000,
    "'" * 10_000,
]
COLUMNS = [("id", "int"), ("name", "text"), (WEIRD, "text")]
STRING_OPS = ["eq", "neq", "contains", "starts_with", "ends_with", "in", "not_in"]


@pytest.fixture(scope="session")
async def hostile(source: RealSource) -> ModelSpec:
    rows = [(i + 1, value, value[::-1]) for i, value in enumerate(HOSTILE)]
    await source.create_table("hostile", COLUMNS, rows)
    return source.model("hostile", COLUMNS)


def expected(op: str, value: str, column: str) -> set[int]:
    test = {
        "eq": lambda v: v == value,
        "neq": lambda v: v != value,
        "contains": lambda v: value in v,
        "starts_with": lambda v: v.startswith(value),
        "ends_with": lambda v: v.endswith(value),
        "in": lambda v: v in (value, "'"),
        "not_in": lambda v: v not in (value, "'"),
    }[op]
    stored = HOSTILE if column == "name" else [v[::-1] for v in HOSTILE]
    return {i + 1 for i, v in enumerate(stored) if test(v)}


def condition(op: str, value: str, column: str = "name") -> dict[str, Any]:
    return {"column": column, "op": op, "value": [value, "'"] if op in ("in", "not_in") else value}


async def check(
    connection: SourceConnection, model: ModelSpec, op: str, value: str, column: str
) -> None:
    query = await compile_audience(condition(op, value, column), model, DictResolver(), now=NOW)
    # The empty string is the one value with its own statement (`IS NOT NULL` for substrings).
    benign_value = "x" if value else ""
    benign = await compile_audience(
        condition(op, benign_value, column), model, DictResolver(), now=NOW
    )
    dialect = connection.dialect
    assert str(query.keys().compile(dialect=dialect)) == str(benign.keys().compile(dialect=dialect))
    assert set(await fetch_keys(connection, query.keys())) == expected(op, value, column)
    if dialect.name == "postgresql":  # the stream below goes through COPY, values inlined
        assert inline_statement(query.members([]), dialect) is not None
    members = await collect(stream_members(connection, query, columns=[column]))
    assert {int(key or 0) for key, _ in members} == expected(op, value, column)
    stored = HOSTILE if column == "name" else [v[::-1] for v in HOSTILE]
    assert all(row == {"id": int(key or 0), column: stored[row["id"] - 1]} for key, row in members)


@pytest.mark.parametrize("value", HOSTILE, ids=[repr(v[:12]) + f"[{len(v)}]" for v in HOSTILE])
async def test_hostile_values(source: RealSource, hostile: ModelSpec, value: str) -> None:
    async with source.open() as connection:
        for op in STRING_OPS:
            await check(connection, hostile, op, value, "name")
        rows = await connection.fetch(sa.text("SELECT count(*) FROM hostile"))
    assert rows.rows[0][0] == len(HOSTILE)  # nothing was dropped


async def test_a_hostile_column_name_is_quoted(source: RealSource, hostile: ModelSpec) -> None:
    async with source.open() as connection:
        for op in STRING_OPS:
            await check(connection, hostile, op, "--; drop table hostile; '", WEIRD)
            await check(connection, hostile, op, ";'", WEIRD)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(value=st.text(max_size=30) | st.sampled_from(HOSTILE), op=st.sampled_from(STRING_OPS))
async def test_any_text_is_either_matched_exactly_or_a_422(
    source: RealSource, hostile: ModelSpec, value: str, op: str
) -> None:
    try:
        async with source.open() as connection:
            await check(connection, hostile, op, value, "name")
    except InvalidInput as exc:
        assert exc.http_status == 422
        assert "\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value)
