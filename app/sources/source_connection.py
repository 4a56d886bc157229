"""The connection a source gives the engine: read-only statements under a timeout, and every
database failure as a `SourceError` (422) carrying the database's message without secrets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable

from app.errors import FieldError, InvalidInput

#: A result row of any width.
AnyRow = Row[*tuple[Any, ...]]

CONNECT_TIMEOUT = 10.0
MAX_MESSAGE = 1000


class SourceError(InvalidInput):
    """The source refused or failed: the database's own message, without credentials."""

    code = "source_error"

    @classmethod
    def at(cls, field: str, message: str) -> SourceError:
        return cls(f"{field}: {message}", [FieldError(field, message)])


@dataclass(frozen=True)
class FetchedRows:
    """A whole (small) result: column names, the driver's type codes, rows."""

    columns: tuple[str, ...]
    type_codes: tuple[object, ...]
    rows: list[AnyRow]


@dataclass(frozen=True, slots=True)
class ColumnBatch:
    """A batch of rows as one sequence of values per column. `key_texts` is `str` of each
    value of the first column when the connection had those texts at no cost (an integer
    column without NULLs in COPY's text), else None. `lines` is each row as the text it came
    in (COPY's), when it came as text: under the same `layout`, the same text is the same
    values. Columns may decode only when read (`CopyColumns`)."""

    columns: Sequence[Sequence[Any]]
    key_texts: Sequence[str] | None = None
    lines: Sequence[bytes] | None = None
    layout: str = ""


class SourceConnection(ABC):
    """A read-only connection to one source; every statement runs under the timeout.

    After a failed statement the connection rolls back and stays usable.
    """

    def __init__(self, dialect: Dialect, url: URL, timeout: float) -> None:
        self.dialect = dialect
        self.url = url
        self.timeout = timeout

    @property
    def dialect_name(self) -> str:
        return self.dialect.name

    @abstractmethod
    async def fetch(self, statement: Executable, *, field: str = "query") -> FetchedRows:
        """Run `statement` and return all its rows (for small results: previews, types)."""

    @abstractmethod
    def stream(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        """Run `statement` and yield its rows in batches, never holding the whole result."""

    async def column_batches(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[ColumnBatch] | None:
        """The batches of `statement` column by column, when the connection reads them
        faster that way than `stream` (PostgreSQL's COPY); None when `stream` is the way."""
        return None

    @abstractmethod
    async def close(self) -> None: ...

    def error(self, exc: BaseException, field: str, *, timed_out: bool = False) -> SourceError:
        if timed_out:
            return SourceError.at(
                field, f"the query ran longer than the statement timeout ({self.timeout:g} s)"
            )
        return SourceError.at(field, sanitised_message(exc, self.url))


def sanitised_message(exc: BaseException, url: URL) -> str:
    """The driver's message (not SQLAlchemy's wrapper with SQL and parameters), no secrets."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = str(cause).strip() or type(cause).__name__
    message = message.replace(url.render_as_string(hide_password=False), url.render_as_string())
    if url.password:
        message = message.replace(str(url.password), "***")
    return message[:MAX_MESSAGE]


def fetched(result: sa.CursorResult[Any]) -> FetchedRows:
    if not result.returns_rows:
        return FetchedRows((), (), [])
    description = result.cursor.description or ()
    return FetchedRows(
        tuple(item[0] for item in description),
        tuple(item[1] for item in description),
        list(result.fetchall()),
    )
