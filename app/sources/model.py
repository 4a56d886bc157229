"""What the engine knows of a parent model: where its rows come from, its key and its columns."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import FromClause

from models import ParentModel


class ColumnType(StrEnum):
    """A column's type as the filter language sees it, the same on every dialect."""

    string = "string"
    number = "number"
    boolean = "boolean"
    timestamp = "timestamp"
    date = "date"
    unknown = "unknown"  #: nothing the filter language compares (only is_null / is_not_null)


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType

    def as_json(self) -> dict[str, str]:
        """The stored form, `ParentModel.columns` items."""
        return {"name": self.name, "type": self.type.value}


def columns_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[ColumnSpec, ...]:
    """`ParentModel.columns` back into specs; a type this version does not know is `unknown`."""
    known = {t.value for t in ColumnType}
    return tuple(
        ColumnSpec(
            str(item["name"]),
            ColumnType(item["type"]) if item.get("type") in known else ColumnType.unknown,
        )
        for item in items
    )


@dataclass(frozen=True)
class ModelSpec:
    """A parent model as the filter compiler needs it: a query or a table, a key, columns."""

    primary_key: str
    columns: tuple[ColumnSpec, ...]
    query: str | None = None
    table: str | None = None
    id: uuid.UUID | None = None
    source_id: uuid.UUID | None = None
    name: str = ""

    @classmethod
    def of(cls, model: ParentModel) -> ModelSpec:
        """The spec of a stored model (columns empty until it has been introspected)."""
        return cls(
            primary_key=model.primary_key,
            columns=columns_from_json(model.columns or []),
            query=model.query,
            table=model.table_name,
            id=model.id,
            source_id=model.source_id,
            name=model.name,
        )

    def column(self, name: str) -> ColumnSpec | None:
        return next((column for column in self.columns if column.name == name), None)

    def relation(self, alias: str = "model") -> FromClause:
        """The model's rows as a FROM clause named `alias`, with its known columns."""
        return model_relation(
            query=self.query, table=self.table, columns=[c.name for c in self.columns], alias=alias
        )


def verbatim(query: str, prefix: str = "") -> sa.TextClause:
    """A model's query as SQLAlchemy text, taken literally (no `:name` bind parameters), with
    trailing semicolons dropped and a closing newline (a trailing comment ends there)."""
    sql = query.strip().rstrip(";").rstrip()
    return sa.text((prefix + sql).replace(":", "\\:") + "\n")


def model_relation(
    *, query: str | None, table: str | None, columns: Sequence[str] = (), alias: str = "model"
) -> FromClause:
    """A model's query wrapped as a subquery, or its table, aliased as `alias`.

    The query is the model author's own SQL, run read-only with a statement timeout; colons are
    escaped so SQLAlchemy does not read `:name` inside it as a bind parameter, and a newline
    closes it so a trailing `-- comment` cannot swallow the closing parenthesis.
    """
    cols: list[sa.ColumnClause[Any]] = [sa.column(name) for name in columns]
    if query is not None:
        return verbatim(query).columns(*cols).subquery(alias)
    if not table:
        raise ValueError("a model needs a query or a table")
    schema, _, name = table.rpartition(".")
    return sa.table(name, *cols, schema=schema or None).alias(alias)
