"""Real source databases for the engine tests: a table writer per dialect and test resolvers."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import duckdb

from app.settings import Settings
from app.sources.connection import SourceConnection, open_source
from app.sources.filter_tree import AudienceSpec
from app.sources.model import ColumnSpec, ColumnType, ModelSpec
from models.enums import SourceType

DIALECTS = ["sqlite", "duckdb", "postgres"]
#: The instant every filter test compiles against.
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)

#: Column kinds the tests write, as (filter type, SQLite, DuckDB, PostgreSQL) types.
KINDS: dict[str, tuple[ColumnType, str, str, str]] = {
    "text": (ColumnType.string, "TEXT", "VARCHAR", "TEXT"),
    # A case-folding collation where the dialect has one: filters must still be case-sensitive.
    "ci_text": (ColumnType.string, "TEXT COLLATE NOCASE", "VARCHAR COLLATE NOCASE", "TEXT"),
    "int": (ColumnType.number, "INTEGER", "BIGINT", "BIGINT"),
    "float": (ColumnType.number, "REAL", "DOUBLE", "DOUBLE PRECISION"),
    "bool": (ColumnType.boolean, "BOOLEAN", "BOOLEAN", "BOOLEAN"),
    "timestamp": (ColumnType.timestamp, "DATETIME", "TIMESTAMP", "TIMESTAMPTZ"),
    "date": (ColumnType.date, "DATE", "DATE", "DATE"),
}


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


Table = tuple[str, Sequence[tuple[str, str]], Sequence[Sequence[Any]]]


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@dataclass
class RealSource:
    """One real source database of a dialect, with a writer that bypasses the engine."""

    dialect: str
    settings: Settings
    url: str
    admin_url: str = ""
    source_id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def source_type(self) -> SourceType:
        return SourceType(self.dialect)

    @property
    def path(self) -> Path:
        return self.settings.resolved_source_files_dir / f"source.{self.dialect}"

    def open(self, **options: Any) -> AbstractAsyncContextManager[SourceConnection]:
        return open_source(self.settings, self.source_type, self.url, **options)

    async def create_table(
        self, name: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
    ) -> None:
        """`columns` are `(name, kind)` with kinds from KINDS; rows hold Python values."""
        await self.create_tables([(name, columns, rows)])

    async def create_tables(self, tables: Sequence[Table]) -> None:
        """Several tables in one writing session (DuckDB opens slowly)."""
        position = {"sqlite": 1, "duckdb": 2, "postgres": 3}[self.dialect]
        statements: list[tuple[str, str, list[list[Any]], int]] = []
        for name, columns, rows in tables:
            ddl = ", ".join(f"{quoted(col)} {KINDS[kind][position]}" for col, kind in columns)
            kinds = [kind for _, kind in columns]
            values = [
                [_stored(self.dialect, kind, value) for kind, value in zip(kinds, row, strict=True)]
                for row in rows
            ]
            statements.append((name, f'CREATE TABLE "{name}" ({ddl})', values, len(columns)))
        if self.dialect == "sqlite":
            with sqlite3.connect(self.path) as connection:
                for name, create, values, width in statements:
                    connection.execute(create)
                    marks = ", ".join("?" * width)
                    connection.executemany(f'INSERT INTO "{name}" VALUES ({marks})', values)
            connection.close()
        elif self.dialect == "duckdb":
            with duckdb.connect(str(self.path)) as connection:
                for name, create, values, width in statements:
                    connection.execute(create)
                    if values:  # one statement: executemany is slow on DuckDB
                        row = "(" + ", ".join("?" * width) + ")"
                        flat = [value for record in values for value in record]
                        rows_sql = ", ".join([row] * len(values))
                        connection.execute(f'INSERT INTO "{name}" VALUES {rows_sql}', flat)
        else:
            connection = await asyncpg.connect(self.admin_url)
            try:
                for name, create, values, _ in statements:
                    await connection.execute(create)
                    await connection.copy_records_to_table(name, records=values)
            finally:
                await connection.close()

    async def execute(self, sql: str) -> None:
        """Run writing SQL as the owner (the engine itself only ever reads)."""
        if self.dialect == "sqlite":
            with sqlite3.connect(self.path) as connection:
                connection.executescript(sql)
            connection.close()
        elif self.dialect == "duckdb":
            with duckdb.connect(str(self.path)) as connection:
                connection.execute(sql)
        else:
            connection = await asyncpg.connect(self.admin_url)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

    def model(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        *,
        primary_key: str = "id",
        name: str = "",
    ) -> ModelSpec:
        return ModelSpec(
            primary_key=primary_key,
            columns=tuple(ColumnSpec(col, KINDS[kind][0]) for col, kind in columns),
            table=table,
            id=uuid.uuid4(),
            source_id=self.source_id,
            name=name or table,
        )


def _stored(dialect: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "timestamp" and dialect == "sqlite":
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S}"
    if kind == "timestamp" and dialect == "duckdb":
        return value.astimezone(UTC).replace(tzinfo=None)
    if kind == "date" and dialect == "sqlite":
        return value.isoformat()
    if kind == "float":
        return float(value)
    return value


@dataclass
class DictResolver:
    """A workspace's other models and audiences, in memory."""

    models: dict[uuid.UUID, ModelSpec] = field(default_factory=dict)
    audiences: dict[uuid.UUID, AudienceSpec] = field(default_factory=dict)

    async def model(self, model_id: uuid.UUID) -> ModelSpec | None:
        return self.models.get(model_id)

    async def audience(self, audience_id: uuid.UUID) -> AudienceSpec | None:
        return self.audiences.get(audience_id)

    def add_audience(
        self, model: ModelSpec, filter: Mapping[str, Any], name: str = ""
    ) -> AudienceSpec:
        assert model.id is not None
        spec = AudienceSpec(uuid.uuid4(), model.id, filter, name)
        self.audiences[spec.id] = spec
        return spec


async def fetch_keys(connection: SourceConnection, statement: Any) -> list[Any]:
    return [row[0] for row in (await connection.fetch(statement)).rows]


async def collect(iterator: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in iterator]


def as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
