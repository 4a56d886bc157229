"""The few SQL spellings that differ between SQLite, PostgreSQL and DuckDB, as SQLAlchemy
constructs compiled per dialect, so a compiled audience query stays dialect-neutral.

- Text compares case-sensitively and in code-point order everywhere: a column declared `NOCASE`
  would otherwise fold case (in `=`, `IN` and even DuckDB's `instr`), so SQLite columns get an
  explicit `COLLATE BINARY` and DuckDB ones `COLLATE "binary"`; PostgreSQL and DuckDB compare
  the column cast to text (which also lets a uuid or an enum column take string operators), and
  PostgreSQL orders string keys with `COLLATE "C"`.
- Substring search is `instr` (SQLite, DuckDB) or `strpos` (PostgreSQL), never `LIKE`, so `%`
  and `_` in a value are plain characters and SQLite's case-insensitive `LIKE` never applies.
- SQLite keeps timestamps as ISO-8601 text in any of its spellings (`T` or space, `Z` or an
  offset): both sides are normalised with `strftime('%Y-%m-%d %H:%M:%f', …)` (UTC, millisecond
  precision) and dates with `date(…)`; the bound value is sent in the same text form.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator, TypeEngine

SQLITE_TIMESTAMP = "%Y-%m-%d %H:%M:%f"


class text_value(FunctionElement[str]):  # lower case like the SQL functions it stands for
    """A string column compared as case-sensitive text."""

    name = "text_value"
    inherit_cache = True
    type = sa.String()


class text_position(FunctionElement[int]):
    """1-based position of the second argument in the first, 0 when absent."""

    name = "text_position"
    inherit_cache = True
    type = sa.Integer()


class key_order(FunctionElement[str]):
    """A string key as it sorts: by code point on every dialect."""

    name = "key_order"
    inherit_cache = True
    type = sa.String()


class timestamp_value(FunctionElement[Any]):
    name = "timestamp_value"
    inherit_cache = True


class date_value(FunctionElement[Any]):
    name = "date_value"
    inherit_cache = True


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


@compiles(timestamp_value)
@compiles(date_value)
def _as_is(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return _args(element, compiler, **kw)[0]


@compiles(text_value, "sqlite")
@compiles(key_order, "sqlite")
def _sqlite_binary(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_args(element, compiler, **kw)[0]} COLLATE BINARY"


@compiles(text_value)
@compiles(key_order)
def _cast_text(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_args(element, compiler, **kw)[0]} AS VARCHAR)"


@compiles(text_value, "duckdb")
@compiles(key_order, "duckdb")
def _duckdb_binary(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f'CAST({_args(element, compiler, **kw)[0]} AS VARCHAR) COLLATE "binary"'


@compiles(text_value, "postgresql")
def _pg_text(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({_args(element, compiler, **kw)[0]} AS TEXT)"


@compiles(key_order, "postgresql")
def _pg_key_order(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f'CAST({_args(element, compiler, **kw)[0]} AS TEXT) COLLATE "C"'


@compiles(text_position)
def _instr(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return "instr({}, {})".format(*_args(element, compiler, **kw))


@compiles(text_position, "postgresql")
def _strpos(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return "strpos({}, {})".format(*_args(element, compiler, **kw))


@compiles(timestamp_value, "sqlite")
def _sqlite_timestamp(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('{SQLITE_TIMESTAMP}', {_args(element, compiler, **kw)[0]})"


@compiles(date_value, "sqlite")
def _sqlite_date(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"date({_args(element, compiler, **kw)[0]})"


class TimestampParam(TypeDecorator[datetime]):
    """A bound aware timestamp: UTC text on SQLite (as `timestamp_value` renders columns)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        value = value.astimezone(UTC)
        return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond // 1000:03d}"


class DateParam(TypeDecorator[date]):
    """A bound date: `YYYY-MM-DD` text on SQLite (as `date_value` renders columns)."""

    impl = sa.Date()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String())
        return dialect.type_descriptor(sa.Date())

    def process_bind_param(self, value: date | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return value.isoformat()
