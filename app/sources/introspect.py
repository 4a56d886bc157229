"""A model's columns and their types, normalised to the filter language's types.

PostgreSQL describes a `LIMIT 0` query precisely (type OIDs), DuckDB its `DESCRIBE`.
SQLite has declared types only: a temporary view over the model carries the declared type of
each column that comes straight from a table, and a column computed in the query (no declared
type) is typed from a sample of its values (ISO-8601 text reads as a date or a timestamp).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from app.errors import InvalidInput
from app.sources.connection import SourceConnection
from app.sources.model import ColumnSpec, ColumnType, model_relation, verbatim

SAMPLE_ROWS = 1000
_SQLITE_RENAMED = re.compile(r"^(.*):\d+$", re.DOTALL)
PG_NUMBERS = {"int2", "int4", "int8", "float4", "float8", "numeric"}
PG_STRINGS = {"text", "varchar", "bpchar", "char", "name", "citext", "uuid"}
DUCKDB_NUMBERS = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
}
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
)


async def describe_model(
    connection: SourceConnection, *, query: str | None, table: str | None, primary_key: str
) -> tuple[ColumnSpec, ...]:
    """The model's columns; a 422 if it cannot run, repeats a name or lacks its primary key."""
    columns = await introspect_columns(connection, query=query, table=table)
    names = [column.name for column in columns]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    field = "query" if query is not None else "table"
    if duplicates:
        raise InvalidInput.field(field, f"the model returns duplicate columns: {duplicates}")
    if primary_key not in names:
        raise InvalidInput.field(
            "primary_key", f"the model has no column {primary_key!r} (it has {names})"
        )
    return columns


async def introspect_columns(
    connection: SourceConnection, *, query: str | None, table: str | None
) -> tuple[ColumnSpec, ...]:
    """Every column of the model, in order, with its normalised type."""
    field = "query" if query is not None else "table"
    everything: sa.Select[Any] = sa.select(sa.literal_column("*")).select_from(
        model_relation(query=query, table=table)
    )
    if connection.dialect_name == "sqlite":
        return await _sqlite_columns(connection, everything, query=query, table=table)
    if connection.dialect_name == "duckdb":
        # DESCRIBE of the query itself: a subquery would rename a repeated column `name_1`.
        source = query if query is not None else str(everything.compile(dialect=connection.dialect))
        described = await connection.fetch(verbatim(source, "DESCRIBE "), field=field)
        return tuple(ColumnSpec(str(row[0]), duckdb_type(str(row[1]))) for row in described.rows)
    described = await connection.fetch(everything.limit(0), field=field)
    types = await _postgres_type_names(connection, described.type_codes)
    return tuple(
        ColumnSpec(name, types.get(int(oid), ColumnType.unknown))  # type: ignore[call-overload]
        for name, oid in zip(described.columns, described.type_codes, strict=True)
    )


def duckdb_type(name: str) -> ColumnType:
    name = name.upper()
    if name == "BOOLEAN":
        return ColumnType.boolean
    if name.startswith("TIMESTAMP"):
        return ColumnType.timestamp
    if name == "DATE":
        return ColumnType.date
    if name in DUCKDB_NUMBERS or name.startswith("DECIMAL"):
        return ColumnType.number
    if name in ("VARCHAR", "UUID") or name.startswith("ENUM("):
        return ColumnType.string
    return ColumnType.unknown


def postgres_type(name: str, category: str) -> ColumnType:
    if name == "bool":
        return ColumnType.boolean
    if name in ("timestamp", "timestamptz"):
        return ColumnType.timestamp
    if name == "date":
        return ColumnType.date
    if name in PG_NUMBERS:
        return ColumnType.number
    if name in PG_STRINGS or category == "E":  # enums compare as their labels
        return ColumnType.string
    return ColumnType.unknown


def sqlite_declared_type(declared: str) -> ColumnType | None:
    """SQLite's affinity rules, with the common names for booleans and times first; None when
    nothing is declared (a computed column)."""
    name = declared.upper()
    if not name:
        return None
    if "BOOL" in name:
        return ColumnType.boolean
    if "TIMESTAMP" in name or "DATETIME" in name:
        return ColumnType.timestamp
    if name.startswith("DATE"):
        return ColumnType.date
    if "INT" in name:
        return ColumnType.number
    if any(part in name for part in ("CHAR", "CLOB", "TEXT", "UUID")):
        return ColumnType.string
    if any(part in name for part in ("REAL", "FLOA", "DOUB", "NUMERIC", "DECIMAL")):
        return ColumnType.number
    return ColumnType.unknown


def sampled_type(values: Sequence[Any]) -> ColumnType:
    """The type a column's sampled values share (all None: unknown)."""
    present = [value for value in values if value is not None]
    if not present:
        return ColumnType.unknown
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return ColumnType.number
    if all(isinstance(value, str) for value in present):
        if all(ISO_DATE.fullmatch(value) and _is_date(value) for value in present):
            return ColumnType.date
        if all(ISO_TIMESTAMP.fullmatch(value) and _is_timestamp(value) for value in present):
            return ColumnType.timestamp
        return ColumnType.string
    return ColumnType.unknown


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


async def _postgres_type_names(
    connection: SourceConnection, oids: Sequence[object]
) -> dict[int, ColumnType]:
    if not oids:
        return {}
    lookup = sa.text(
        "SELECT t.oid, coalesce(b.typname, t.typname), coalesce(b.typcategory, t.typcategory) "
        "FROM pg_catalog.pg_type t LEFT JOIN pg_catalog.pg_type b ON b.oid = t.typbasetype "
        "WHERE t.oid IN :oids"
    ).bindparams(sa.bindparam("oids", [int(oid) for oid in oids], expanding=True))  # type: ignore[call-overload]
    rows = (await connection.fetch(lookup)).rows
    return {int(row[0]): postgres_type(str(row[1]), str(row[2])) for row in rows}


async def _sqlite_columns(
    connection: SourceConnection,
    everything: sa.Select[Any],
    *,
    query: str | None,
    table: str | None,
) -> tuple[ColumnSpec, ...]:
    field = "query" if query is not None else "table"
    view = f"signalsmith_columns_{uuid.uuid4().hex}"
    sql = str(everything.compile(dialect=connection.dialect)).replace(":", "\\:")
    await connection.fetch(sa.text(f'CREATE TEMP VIEW "{view}" AS {sql}'), field=field)
    try:
        info = await connection.fetch(sa.text(f'PRAGMA temp.table_info("{view}")'), field=field)
    finally:
        await connection.fetch(sa.text(f'DROP VIEW temp."{view}"'), field=field)
    names = [str(row[1]) for row in info.rows]
    # SQLite renames a repeated column `name:1`; report it as the duplicate it is.
    names = [_SQLITE_RENAMED.sub(lambda m: m[1] if m[1] in names else m[0], n) for n in names]
    declared = {
        name: sqlite_declared_type(str(row[2] or ""))
        for name, row in zip(names, info.rows, strict=True)
    }
    undeclared = [name for name in names if declared[name] is None]
    if undeclared and len(set(names)) == len(names):
        relation = model_relation(query=query, table=table, columns=names)
        sample = await connection.fetch(
            sa.select(*[relation.c[name] for name in undeclared]).limit(SAMPLE_ROWS), field=field
        )
        for index, name in enumerate(undeclared):
            declared[name] = sampled_type([row[index] for row in sample.rows])
    return tuple(ColumnSpec(name, declared[name] or ColumnType.unknown) for name in names)
