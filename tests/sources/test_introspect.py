"""Model introspection: columns and normalised types of a table or a query, on every dialect."""

from __future__ import annotations

from datetime import date

import pytest

from app.errors import InvalidInput
from app.sources.connection import SourceError
from app.sources.introspect import describe_model, sampled_type, sqlite_declared_type
from app.sources.model import ColumnType
from tests.sources.support import NOW, RealSource

ALL_KINDS = [
    ("id", "int"),
    ("name", "text"),
    ("nick", "ci_text"),
    ("score", "int"),
    ("ratio", "float"),
    ("active", "bool"),
    ("seen", "timestamp"),
    ("born", "date"),
]
ROW = (1, "Ann", "ann", 3, 1.5, True, NOW, date(1990, 1, 1))
EXPECTED = {
    "id": ColumnType.number,
    "name": ColumnType.string,
    "nick": ColumnType.string,
    "score": ColumnType.number,
    "ratio": ColumnType.number,
    "active": ColumnType.boolean,
    "seen": ColumnType.timestamp,
    "born": ColumnType.date,
}


@pytest.fixture(scope="session")
async def typed_table(source: RealSource) -> str:
    await source.create_table("typed", ALL_KINDS, [ROW])
    return "typed"


async def test_a_table_has_its_columns_typed(source: RealSource, typed_table: str) -> None:
    async with source.open() as connection:
        columns = await describe_model(connection, query=None, table=typed_table, primary_key="id")
    assert [(c.name, c.type) for c in columns] == list(EXPECTED.items())


async def test_a_query_has_its_columns_typed(source: RealSource, typed_table: str) -> None:
    query = (
        "SELECT id, name || '!' AS shout, score * 2 AS doubled, seen, born, active, "
        "'a:b' AS colon FROM typed WHERE name <> ':nope' -- a trailing comment: with a colon\n;"
    )
    async with source.open() as connection:
        columns = await describe_model(connection, query=query, table=None, primary_key="id")
    assert {c.name: c.type for c in columns} == {
        "id": ColumnType.number,
        "shout": ColumnType.string,
        "doubled": ColumnType.number,
        "seen": ColumnType.timestamp,
        "born": ColumnType.date,
        "active": ColumnType.boolean,
        "colon": ColumnType.string,
    }


async def test_types_the_filters_cannot_compare_are_unknown(source: RealSource) -> None:
    query = {
        "sqlite": "SELECT 1 AS id, x'00ff' AS blob, NULL AS empty",
        "duckdb": "SELECT 1 AS id, [1, 2] AS list, INTERVAL 1 DAY AS span",
        "postgres": "SELECT 1 AS id, '{}'::json AS doc, interval '1 day' AS span",
    }[source.dialect]
    async with source.open() as connection:
        columns = await describe_model(connection, query=query, table=None, primary_key="id")
    assert [c.type for c in columns] == [ColumnType.number, ColumnType.unknown, ColumnType.unknown]


async def test_duplicate_columns_and_a_missing_key_are_422s(
    source: RealSource, typed_table: str
) -> None:
    async with source.open() as connection:
        with pytest.raises(InvalidInput) as caught:
            await describe_model(
                connection,
                query="SELECT id, name, upper(name) AS name FROM typed",
                table=None,
                primary_key="id",
            )
        assert caught.value.details[0].field == "query"
        assert "duplicate columns: ['name']" in caught.value.details[0].message
        with pytest.raises(InvalidInput) as caught:
            await describe_model(
                connection, query=None, table=typed_table, primary_key="customer_id"
            )
        assert caught.value.details[0].field == "primary_key"


async def test_sql_errors_name_the_query_or_the_table(source: RealSource) -> None:
    async with source.open() as connection:
        with pytest.raises(SourceError) as caught:
            await describe_model(connection, query="SELEC oops", table=None, primary_key="id")
        assert caught.value.details[0].field == "query"
        with pytest.raises(SourceError) as caught:
            await describe_model(connection, query=None, table="no_such_table", primary_key="id")
        assert caught.value.details[0].field == "table"
        assert "no_such_table" in caught.value.details[0].message


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        ("VARCHAR(20)", ColumnType.string),
        ("BIGINT", ColumnType.number),
        ("DOUBLE PRECISION", ColumnType.number),
        ("DECIMAL(10,2)", ColumnType.number),
        ("BOOLEAN", ColumnType.boolean),
        ("TIMESTAMP", ColumnType.timestamp),
        ("datetime", ColumnType.timestamp),
        ("DATE", ColumnType.date),
        ("BLOB", ColumnType.unknown),
        ("", None),
    ],
)
def test_sqlite_declared_types(declared: str, expected: ColumnType | None) -> None:
    assert sqlite_declared_type(declared) is expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2.5, None], ColumnType.number),
        (["2024-01-01", None], ColumnType.date),
        (["2024-01-01 10:00:00", "2024-01-01T10:00:00.5+02:00"], ColumnType.timestamp),
        (["2024-01-01", "soon"], ColumnType.string),
        (["2024-13-45"], ColumnType.string),
        ([b"\x00"], ColumnType.unknown),
        ([None, None], ColumnType.unknown),
    ],
)
def test_sampled_types(values: list[object], expected: ColumnType) -> None:
    assert sampled_type(values) is expected
