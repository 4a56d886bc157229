"""PostgreSQL's COPY path of the membership stream: the very values and members the cursor
gives, on every supported type; bounded, cancellable and timed like the cursor."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import aclosing
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from app.settings import Settings
from app.sources.connection import SourceConnection, SourceError
from app.sources.copy_text import DECODERS, CopyTextReader
from app.sources.filters import AudienceQuery, compile_audience
from app.sources.membership import (
    LineBatch,
    SplitSelection,
    member_key,
    stream_line_batches,
    stream_member_batches,
    stream_members,
)
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from app.sources.postgres_connection import PostgresConnection
from app.sources.postgres_copy import inline_statement
from app.sources.source_connection import ColumnBatch
from app.sources.splits import SplitLayout
from tests.sources.conftest import make_source
from tests.sources.support import NOW, DictResolver, RealSource, collect

TEXTS = [
    "plain",
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "back\\slash",
    "\\N",
    "\\",
    "ends with \\",
    "\\\\",
    "quote's",
    '"double"',
    "comma, comma",
    "\b\f\v",
    "\x01\x1f\x7f",
    "é 日本語 👍🏽 שָׁלוֹם",
    "",
    " ",
    "'; drop table every_type; --",
    "x" * 70_000,
]
NUMERICS = [
    "0",
    "0.00",
    "1000000",
    "10000",
    "-20000",
    "100000000.5",
    "123456789012345678901234567890",
    "1E+40",
    "0.000001",
    "-3.14",
    "100.0000",
    "NaN",
    "Infinity",
    "-Infinity",
]
FLOATS = [0.1, -0.0, 1e300, 5e-324, 1 / 3, float("inf"), float("-inf"), float("nan"), 2.0**53]
SINGLES = [0.1, -0.0, 3.4e38, 1e-45, 1 / 3, float("inf"), float("-inf"), float("nan"), 16777217.0]
EVERY_TYPE_SQL = """
CREATE TYPE copy_mood AS ENUM ('ok', 'it''s \\ complicated', 'tab	in');
CREATE DOMAIN copy_positive AS integer CHECK (VALUE > 0);
CREATE TABLE every_type (
    id bigint PRIMARY KEY,
    small smallint, whole integer, positive copy_positive, price numeric(14, 2), exact numeric,
    double double precision, single real, flag boolean,
    body text, short varchar(20), padded char(5), label name,
    doc json, bin_doc jsonb, uid uuid, day date, moment timestamp, instant timestamptz,
    mood copy_mood
);
"""
COLUMNS = [
    ("id", ColumnType.number),
    ("small", ColumnType.number),
    ("whole", ColumnType.number),
    ("positive", ColumnType.number),
    ("price", ColumnType.number),
    ("exact", ColumnType.number),
    ("double", ColumnType.number),
    ("single", ColumnType.number),
    ("flag", ColumnType.boolean),
    ("body", ColumnType.string),
    ("short", ColumnType.string),
    ("padded", ColumnType.string),
    ("label", ColumnType.string),
    ("doc", ColumnType.unknown),
    ("bin_doc", ColumnType.unknown),
    ("uid", ColumnType.string),
    ("day", ColumnType.date),
    ("moment", ColumnType.timestamp),
    ("instant", ColumnType.timestamp),
    ("mood", ColumnType.string),
]
DATES = [date(2024, 2, 29), date(1, 1, 1), date(9999, 12, 31), date.max, date.min]
MOMENTS = [
    datetime(2024, 2, 29, 23, 59, 59, 999999),
    datetime(1, 1, 1),
    datetime(2000, 1, 1, 0, 0, 0, 10),
    datetime.max,
    datetime.min,
]
MOODS = ["ok", "it's \\ complicated", "tab\tin"]


def every_type_rows() -> list[tuple[Any, ...]]:
    """One row of NULLs, then rows cycling through the unusual values of each column."""
    rows: list[tuple[Any, ...]] = [(1, *[None] * (len(COLUMNS) - 1))]
    for i in range(60):
        text = TEXTS[i % len(TEXTS)]
        rows.append(
            (
                i + 2,
                [-32768, 32767, 0][i % 3],
                [-(2**31), 2**31 - 1, 7][i % 3],
                i + 1,
                [Decimal("0.00"), Decimal("-123456789012.34"), Decimal("10000.00")][i % 3],
                Decimal(NUMERICS[i % len(NUMERICS)]),
                FLOATS[i % len(FLOATS)],
                SINGLES[(i + 3) % len(SINGLES)],
                [True, False][i % 2],
                text,
                text[:20],
                text[:5],
                text[:63],
                json.dumps({"a": text[:100]}),
                json.dumps({"k": text[:100], "é": [True, 2.50, None]}, ensure_ascii=False),
                uuid.UUID(int=i * 2**100 + i),
                DATES[i % len(DATES)],
                MOMENTS[i % len(MOMENTS)],
                MOMENTS[(i + 1) % len(MOMENTS)].replace(tzinfo=UTC)
                if MOMENTS[(i + 1) % len(MOMENTS)] not in (datetime.max, datetime.min)
                else MOMENTS[(i + 1) % len(MOMENTS)],
                MOODS[i % len(MOODS)],
            )
        )
        if i % 7 == 3:  # NULLs among values, in every column but the key
            rows[-1] = tuple(None if j and j % 4 == i % 4 else v for j, v in enumerate(rows[-1]))
    return rows


@pytest.fixture(scope="session")
def pg(source_settings: Settings, request: pytest.FixtureRequest) -> RealSource:
    return make_source("postgres", source_settings, request)


@pytest.fixture(scope="session")
async def every_type(pg: RealSource) -> ModelSpec:
    await pg.execute(EVERY_TYPE_SQL)
    connection = await asyncpg.connect(pg.admin_url)
    try:
        names = ", ".join(f'"{name}"' for name, _ in COLUMNS)
        marks = ", ".join(f"${i + 1}" for i in range(len(COLUMNS)))
        await connection.executemany(
            f"INSERT INTO every_type ({names}) VALUES ({marks})", every_type_rows()
        )
    finally:
        await connection.close()
    return ModelSpec(
        primary_key="id",
        columns=tuple(ColumnSpec(name, kind) for name, kind in COLUMNS),
        table="every_type",
    )


def exactly(values: Any) -> list[tuple[type, str]]:
    """Values compared by type and repr (so `Decimal('1.00E+6')` is not `Decimal('1000000')`
    and NaN equals NaN)."""
    return [(type(value), repr(value)) for value in values]


async def copied_batches(
    connection: SourceConnection, statement: Any, batch_size: int
) -> list[ColumnBatch]:
    batches = await connection.column_batches(statement, batch_size=batch_size)
    assert batches is not None, "the statement should go through COPY"
    return await collect(batches)


async def cursor_batches(
    connection: SourceConnection, statement: Any, batch_size: int
) -> list[ColumnBatch]:
    """The cursor's batches, as columns."""
    batches = await collect(connection.stream(statement, batch_size=batch_size))
    return [ColumnBatch(list(zip(*rows, strict=True))) for rows in batches]


async def copies(connection: SourceConnection, statement: Any) -> bool:
    assert isinstance(connection, PostgresConnection)
    return await connection._copy_plan(statement) is not None


async def audience(model: ModelSpec, raw: dict[str, Any] | None = None) -> AudienceQuery:
    return await compile_audience(raw or {}, model, DictResolver(), now=NOW)


@pytest.mark.parametrize("batch_size", [1, 7, 5000])
async def test_copy_gives_the_cursors_values_exactly(
    pg: RealSource, every_type: ModelSpec, batch_size: int
) -> None:
    statement = (await audience(every_type)).members()
    async with pg.open() as connection:
        fast = await copied_batches(connection, statement, batch_size)
        slow = await cursor_batches(connection, statement, batch_size)
    assert all(0 < len(batch.columns[0]) <= batch_size for batch in fast)
    assert len(fast[0].columns) == len(COLUMNS)
    for index, (name, _) in enumerate(COLUMNS):
        copied = [value for batch in fast for value in batch.columns[index]]
        cursor = [value for batch in slow for value in batch.columns[index]]
        assert exactly(copied) == exactly(cursor), name
    for batch in fast:  # the integer key's texts come along, and are its member keys
        assert batch.key_texts == [member_key(value) for value in batch.columns[0]]


async def test_copy_gives_the_cursors_members_exactly(
    pg: RealSource, every_type: ModelSpec
) -> None:
    query = await audience(
        every_type,
        {
            "or": [
                {"column": "flag", "op": "eq", "value": True},
                {"column": "flag", "op": "is_null"},
            ]
        },
    )
    names = [name for name, _ in COLUMNS]
    async with pg.open() as connection:
        assert await copies(connection, query.members())
        members = await collect(stream_members(connection, query, batch_size=4))
        rows = [row for batch in await collect(connection.stream(query.members())) for row in batch]
    expected = [(member_key(row[0]), dict(zip(names, row, strict=True))) for row in rows]
    assert len(members) == len(expected) > 30
    assert [key for key, _ in members] == [key for key, _ in expected]
    for (_, got), (_, want) in zip(members, expected, strict=True):
        assert list(got) == list(want)
        assert exactly(got.values()) == exactly(want.values())


async def test_text_keys_through_copy_keep_code_point_order_and_nulls(pg: RealSource) -> None:
    keys = ["b", "B", "a\\b", "a\tb", "a\nb", "\\N", "é", "e", "👍", " x", "10", "9", None]
    await pg.execute('CREATE TABLE copy_text_keys ("key" text COLLATE "en-US-x-icu", n int)')
    connection = await asyncpg.connect(pg.admin_url)
    try:
        await connection.executemany(
            "INSERT INTO copy_text_keys VALUES ($1, $2)", [(k, i) for i, k in enumerate(keys)]
        )
    finally:
        await connection.close()
    model = ModelSpec(
        primary_key="key",
        columns=(ColumnSpec("key", ColumnType.string), ColumnSpec("n", ColumnType.number)),
        table="copy_text_keys",
    )
    query = await audience(model)
    async with pg.open() as connection:
        assert await copies(connection, query.members())
        members = await collect(stream_members(connection, query, batch_size=5))
    present = sorted(k for k in keys if k is not None)
    assert [key for key, _ in members] == [*present, None]
    assert [row["key"] for _, row in members] == [*present, None]


async def test_unsupported_types_stream_through_the_cursor(pg: RealSource) -> None:
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("tags", ColumnType.unknown)),
        query="SELECT i AS id, ARRAY[i, i + 1] AS tags, interval '1 day' * i AS span "
        "FROM generate_series(1, 5) i",
    )
    query = await audience(model)
    async with pg.open() as connection:
        assert not await copies(connection, query.members())
        members = await collect(stream_members(connection, query))
    assert members == [(str(i), {"id": i, "tags": [i, i + 1]}) for i in range(1, 6)]


@settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    texts=st.lists(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
        min_size=1,
        max_size=30,
    )
)
async def test_any_text_reads_back_the_same_through_copy(pg: RealSource, texts: list[str]) -> None:
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("body", ColumnType.string)),
        query="SELECT ordinality AS id, body FROM unnest(\n"
        + "ARRAY["
        + ", ".join("'" + text.replace("'", "''") + "'" for text in texts)
        + "]::text[]) WITH ORDINALITY AS t(body, ordinality)",
    )
    query = await audience(model)
    async with pg.open() as connection:
        members = await collect(stream_members(connection, query, batch_size=7))
    assert [row["body"] for _, row in members] == texts


async def test_copy_text_split_anywhere_reads_the_same(
    pg: RealSource, every_type: ModelSpec
) -> None:
    """Rows, and multi-byte characters, cut across chunks at every byte position."""
    statement = (await audience(every_type)).members()
    async with pg.open() as connection:
        assert isinstance(connection, PostgresConnection)
        plan = await connection._copy_plan(statement)
        assert plan is not None
        sql, reader = plan
        chunks: list[bytes] = []

        async def keep(chunk: bytes) -> None:
            chunks.append(bytes(chunk))

        await (await connection._driver()).copy_from_query(sql, output=keep)
    lines = b"".join(chunks).splitlines(keepends=True)
    data = b"".join(line for line in lines if len(line) < 2000)
    whole = CopyTextReader(reader.decoders)
    texts, escaped = whole.feed(data)
    expected = whole.columns(texts, escaped, 0, len(texts) // whole.width)
    for size in [1, 2, 3, 5, 64, 1000]:
        pieces = CopyTextReader(reader.decoders)
        got: list[list[Any]] = [[] for _ in range(pieces.width)]
        for start in range(0, len(data), size):
            texts, escaped = pieces.feed(data[start : start + size])
            for column, values in zip(
                got, pieces.columns(texts, escaped, 0, len(texts) // pieces.width), strict=True
            ):
                column.extend(values)
        pieces.finish()
        assert [exactly(c) for c in got] == [exactly(c) for c in expected], size


def test_numeric_texts_read_as_asyncpg_reads_them() -> None:
    numeric = DECODERS["numeric"]
    cases = {
        "1000000": "Decimal('1.00E+6')",
        "10000": "Decimal('1E+4')",
        "-20000": "Decimal('-2E+4')",
        "100000000": "Decimal('1E+8')",
        "12340000": "Decimal('1.234E+7')",
        "1234000": "Decimal('1234000')",
        "100.0000": "Decimal('100.0000')",
        "0": "Decimal('0')",
        "0.00": "Decimal('0.00')",
    }
    assert [repr(numeric.one(text)) for text in cases] == list(cases.values())
    assert [repr(value) for value in numeric.decode(list(cases), False)] == list(cases.values())


# Bounded, cancellable, timed ------------------------------------------------------------------

BIG_ROWS = 60_000
BIG = ModelSpec(
    primary_key="id",
    columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("payload", ColumnType.string)),
    table="copy_big",
)


@pytest.fixture(scope="session")
async def big(pg: RealSource) -> ModelSpec:
    """60 000 rows of 500 bytes (30 MB of COPY text, more than any socket buffer), streamed in
    key order by the primary key's index as the COPY goes."""
    await pg.execute(
        "CREATE TABLE copy_big (id bigint PRIMARY KEY, payload text);"
        "INSERT INTO copy_big SELECT i, repeat(md5(i::text), 16) "
        f"FROM generate_series(1, {BIG_ROWS}) i"
    )
    await pg.execute("VACUUM ANALYZE copy_big")
    return BIG


async def backend_state(pg: RealSource, connection: SourceConnection) -> str:
    pid = (await connection.fetch(sa.select(sa.func.pg_backend_pid()))).rows[0][0]
    admin = await asyncpg.connect(pg.admin_url)
    try:
        return str(await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid))
    finally:
        await admin.close()


async def test_leaving_a_copy_early_stops_it_and_frees_the_connection(
    pg: RealSource, big: ModelSpec
) -> None:
    query = await audience(big)
    async with pg.open() as connection:
        assert await copies(connection, query.members())
        async with aclosing(stream_member_batches(connection, query, batch_size=100)) as batches:
            async for batch in batches:
                assert batch[0][0] == "1"
                break
        assert (await connection.fetch(query.count())).rows[0][0] == BIG_ROWS
        assert await backend_state(pg, connection) == "idle in transaction"
        # The statement timeout is back for the next statements.
        timeout = await connection.fetch(sa.text("SELECT current_setting('statement_timeout')"))
        assert timeout.rows[0][0] == "1min"


async def test_cancelling_the_consumer_stops_the_copy(pg: RealSource, big: ModelSpec) -> None:
    query = await audience(big)
    async with pg.open() as connection:
        started = asyncio.Event()

        async def consume() -> None:
            async for _ in stream_members(connection, query, batch_size=100):
                started.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await connection.fetch(query.count())).rows[0][0] == BIG_ROWS


async def test_a_slow_consumer_holds_the_server_back_without_timing_out(
    pg: RealSource, big: ModelSpec
) -> None:
    """Past the pipe's limit the server waits to write (backpressure: memory stays bounded
    whatever the consumer's pace), and a consumer slower than the statement timeout is not
    the server's fault: the COPY goes on to the end."""
    query = await audience(big)
    seen, states = 0, []
    async with pg.open(statement_timeout=1) as connection:
        pid = (await connection.fetch(sa.select(sa.func.pg_backend_pid()))).rows[0][0]
        admin = await asyncpg.connect(pg.admin_url)
        try:
            batches = stream_member_batches(connection, query, batch_size=5000)
            async with aclosing(batches):
                async for batch in batches:
                    if not seen:  # longer than the timeout, with 29 MB still to come
                        await asyncio.sleep(1.5)
                        states.append(
                            await admin.fetchval(
                                "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid
                            )
                        )
                    seen += len(batch)
        finally:
            await admin.close()
    assert seen == BIG_ROWS
    assert states == ["ClientWrite"]


async def test_a_server_that_sends_nothing_for_the_timeout_is_a_timeout(pg: RealSource) -> None:
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number),),
        query="SELECT 1 AS id FROM pg_sleep(30)",
    )
    query = await audience(model)
    async with pg.open(statement_timeout=0.3) as connection:
        assert await copies(connection, query.members())
        with pytest.raises(SourceError) as caught:
            await collect(stream_members(connection, query))
        assert caught.value.details[0].message == (
            "the query ran longer than the statement timeout (0.3 s)"
        )
        assert (await connection.fetch(sa.select(sa.literal(2)))).rows[0][0] == 2


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "SELECT i AS id, 1 / (i - 40000) AS x FROM generate_series(1, 50000) i",
            "division by zero",
        ),
        ("SELECT nextval('copy_sequence') AS id, 1 AS x", "read-only transaction"),
        ("SELECT id, nope AS x FROM copy_big", "nope"),
    ],
)
async def test_copy_errors_are_sanitised_source_errors(
    pg: RealSource, big: ModelSpec, query: str, message: str
) -> None:
    await pg.execute("CREATE SEQUENCE IF NOT EXISTS copy_sequence")
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("x", ColumnType.number)),
        query=query,
    )
    audience_query = await audience(model, {"column": "x", "op": "gte", "value": -10})
    async with pg.open() as connection:
        with pytest.raises(SourceError) as caught:
            await collect(stream_members(connection, audience_query))
        detail = caught.value.details[0]
        assert message in detail.message
        assert "[SQL:" not in detail.message and "COPY" not in detail.message
        assert (await connection.fetch(sa.select(sa.literal(3)))).rows[0][0] == 3


# Inlined values -----------------------------------------------------------------------------


@settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    value=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
    | st.sampled_from(["'", "\\", "\\'", "'; drop table x; --", "$1", "E'", "''\\''"]),
    conforming=st.booleans(),
)
async def test_an_inlined_text_is_the_text_whatever_the_quoting_mode(
    pg: RealSource, value: str, conforming: bool
) -> None:
    sql = inline_statement(sa.select(sa.literal(value, sa.String())), PGDialect_asyncpg())
    assert sql is not None
    connection = await asyncpg.connect(pg.admin_url)
    try:
        await connection.execute(
            f"SET standard_conforming_strings = {'on' if conforming else 'off'}"
        )
        assert await connection.fetchval(sql) == value
    finally:
        await connection.close()


def test_values_it_cannot_inline_leave_the_statement_to_the_cursor() -> None:
    dialect = PGDialect_asyncpg()
    naive = sa.select(sa.literal(datetime(2024, 1, 1), sa.DateTime(timezone=True)))
    lone_surrogate = sa.select(sa.literal("\ud800", sa.String()))
    other = sa.select(sa.literal(b"\x00", sa.LargeBinary()))
    assert [inline_statement(s, dialect) for s in (naive, lone_surrogate, other)] == [None] * 3
    assert inline_statement(sa.select(sa.literal(5, sa.BigInteger())), dialect) == (
        "SELECT E'5'::BIGINT AS anon_1"
    )


def copy_escaped(value: str | None) -> str:
    """A value as COPY's text format writes it."""
    if value is None:
        return "\\N"
    escapes = {"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(escapes.get(c, "\\v" if c == "\v" else c) for c in value)


@settings(max_examples=200, deadline=None, database=None)
@given(
    texts=st.lists(st.none() | st.text(st.characters(exclude_categories=["Cs"])), max_size=20),
    numbers=st.lists(st.none() | st.integers(), max_size=20),
)
def test_nulls_and_escapes_anywhere_decode(
    texts: list[str | None], numbers: list[int | None]
) -> None:
    reader = CopyTextReader([DECODERS["text"], DECODERS["int8"]])
    rows = list(zip(texts, numbers, strict=False))
    line = "".join(
        f"{copy_escaped(t)}\t{copy_escaped(None if n is None else str(n))}\n" for t, n in rows
    )
    raw, escaped = reader.feed(line.encode())
    assert escaped == ("\\" in line)
    got_texts, got_numbers = reader.columns(raw, escaped, 0, len(rows))
    assert got_texts == [t for t, _ in rows]
    assert got_numbers == [n for _, n in rows]


async def test_settings_that_change_the_text_leave_those_types_to_the_cursor(
    pg: RealSource, every_type: ModelSpec
) -> None:
    """Dates in another style, or floats printed short, would not read back the same: such a
    result streams through the cursor (the settings are read, never changed)."""
    database = pg.admin_url.rsplit("/", 1)[1]
    dates = (await audience(every_type)).members(["day"])
    floats = (await audience(every_type)).members(["double"])
    texts = (await audience(every_type)).members(["body", "price"])
    await pg.execute(
        f"ALTER DATABASE \"{database}\" SET DateStyle = 'SQL, DMY';"
        f'ALTER DATABASE "{database}" SET extra_float_digits = 0'
    )
    try:
        async with pg.open() as connection:
            assert [await copies(connection, s) for s in (dates, floats, texts)] == [
                False,
                False,
                True,
            ]
            streamed = await collect(stream_members(connection, await audience(every_type)))
    finally:
        await pg.execute(
            f'ALTER DATABASE "{database}" RESET DateStyle;'
            f'ALTER DATABASE "{database}" RESET extra_float_digits'
        )
    async with pg.open() as connection:
        assert await copies(connection, dates) and await copies(connection, floats)
        copied = await collect(stream_members(connection, await audience(every_type)))
    assert [key for key, _ in streamed] == [key for key, _ in copied]
    for (_, got), (_, want) in zip(streamed, copied, strict=True):
        assert exactly(got.values()) == exactly(want.values())


async def test_a_value_python_cannot_hold_is_a_source_error(pg: RealSource) -> None:
    model = ModelSpec(
        primary_key="id",
        columns=(ColumnSpec("id", ColumnType.number), ColumnSpec("day", ColumnType.date)),
        query="SELECT i AS id, CASE WHEN i = 3 THEN '0044-03-15 BC'::date ELSE current_date END "
        "AS day FROM generate_series(1, 5) i",
    )
    query = await audience(model)
    async with pg.open() as connection:
        assert await copies(connection, query.members())
        with pytest.raises(SourceError) as caught:
            await collect(stream_members(connection, query))
        assert "0044-03-15 BC" in caught.value.details[0].message
        assert (await connection.fetch(query.count())).rows[0][0] == 5


async def test_a_value_python_cannot_hold_is_a_source_error_on_the_cursor_too(
    pg: RealSource,
) -> None:
    model = ModelSpec(  # an array column: read through the cursor, not COPY
        primary_key="id",
        columns=(
            ColumnSpec("id", ColumnType.number),
            ColumnSpec("day", ColumnType.date),
            ColumnSpec("tags", ColumnType.unknown),
        ),
        query="SELECT i AS id, CASE WHEN i = 3 THEN '0044-03-15 BC'::date ELSE current_date END "
        "AS day, ARRAY['a', 'b'] AS tags FROM generate_series(1, 5) i",
    )
    query = await audience(model)
    async with pg.open() as connection:
        assert not await copies(connection, query.members())
        with pytest.raises(SourceError) as caught:
            await collect(stream_members(connection, query))
        assert caught.value.details[0].message.startswith("a value could not be read")
        assert (await connection.fetch(query.count())).rows[0][0] == 5


@pytest.mark.parametrize("batch_size", [1, 7, 5000])
async def test_line_batches_decode_any_rows_as_the_whole_batch_does(
    pg: RealSource, every_type: ModelSpec, batch_size: int
) -> None:
    """A batch of lines gives each member's key and COPY line at once, and any of its rows
    decoded alone (NULLs, escapes and all) exactly as the whole batch decodes them."""
    query = await audience(every_type)
    async with pg.open() as connection:
        members = await collect(stream_members(connection, query, batch_size=batch_size))
        batches = await collect(stream_line_batches(connection, query, batch_size=batch_size))
        sql, _ = await copy_plan(connection, query)
        raw: list[bytes] = []

        async def keep(chunk: bytes) -> None:
            raw.append(bytes(chunk))

        await (await connection._driver()).copy_from_query(sql, output=keep)
    assert all(isinstance(batch, LineBatch) for batch in batches)
    lines = [line for batch in batches for line in batch.lines]
    assert lines == b"".join(raw).split(b"\n")[:-1]
    assert [k for batch in batches for k in batch.keys] == [key for key, _ in members]
    assert len({batch.layout for batch in batches}) == 1 and sql in batches[0].layout
    start = 0
    for batch in batches:
        assert isinstance(batch, LineBatch)
        size = len(batch.keys)
        mine = members[start : start + size]
        runs = [list(range(1, size)), list(range(size // 3, 2 * size // 3 + 1))]
        every = ([], [size - 1], list(range(0, size, 3)), list(range(size))[::-1], *runs)
        for positions in every:
            got = batch.rows_at(positions)
            want = [mine[i] for i in positions]
            assert [k for k, _ in got] == [k for k, _ in want]
            for (_, row), (_, expected) in zip(got, want, strict=True):
                assert exactly(row.values()) == exactly(expected.values())
        start += size


async def test_a_split_group_of_line_batches_keeps_its_members_lines_and_rows(
    pg: RealSource, every_type: ModelSpec
) -> None:
    query = await audience(every_type)
    layout = SplitLayout.fresh([("a", 4000), ("b", 6000)])
    split = SplitSelection("salt", layout, "a")
    async with pg.open() as connection:
        everyone = await collect(stream_line_batches(connection, query, batch_size=9))
        group = await collect(stream_line_batches(connection, query, batch_size=9, split=split))
        rows = await collect(stream_members(connection, query, batch_size=9, split=split))
    lines = {
        key: line
        for batch in everyone
        if isinstance(batch, LineBatch)
        for key, line in zip(batch.keys, batch.lines, strict=True)
    }
    in_group = [m for b in group if isinstance(b, LineBatch) for m in b.rows_at(range(len(b.keys)))]
    assert 0 < len(in_group) < len(lines)
    assert [k for k, _ in in_group] == [k for k, _ in rows]
    assert all(layout.group_of("salt", k) == "a" for k, _ in in_group if k is not None)
    for (_, got), (_, want) in zip(in_group, rows, strict=True):
        assert exactly(got.values()) == exactly(want.values())
    assert all(
        lines[k] == line
        for b in group
        if isinstance(b, LineBatch)
        for k, line in zip(b.keys, b.lines, strict=True)
    )


async def copy_plan(connection: SourceConnection, query: AudienceQuery) -> tuple[str, Any]:
    assert isinstance(connection, PostgresConnection)
    plan = await connection._copy_plan(query.members())
    assert plan is not None
    return plan
