"""Read-only connections to source databases, with a statement timeout (DESIGN §6, §9).

PostgreSQL runs natively async on asyncpg (`postgres_connection`); SQLite and DuckDB, which
have synchronous drivers only, run each connection on a dedicated worker thread
(`file_connection`). Both bound every statement by the timeout and turn every database failure
into a `SourceError` (422) with the database's own message, the URL and password scrubbed out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa

from app.settings import Settings
from app.sources.file_connection import FileConnection
from app.sources.postgres_connection import PostgresConnection
from app.sources.source_connection import (
    CONNECT_TIMEOUT,
    FetchedRows,
    SourceConnection,
    SourceError,
    sanitised_message,
)
from app.sources.urls import parse_source_url
from models.enums import SourceType

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_STATEMENT_TIMEOUT",
    "FetchedRows",
    "SourceConnection",
    "SourceError",
    "check_source",
    "open_source",
    "sanitised_message",
]

DEFAULT_STATEMENT_TIMEOUT = 60.0


@asynccontextmanager
async def open_source(
    settings: Settings,
    source_type: SourceType,
    url: str,
    *,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
) -> AsyncIterator[SourceConnection]:
    """A read-only connection to the source at `url` (checked again against the folder)."""
    parsed = parse_source_url(settings, source_type, url)
    connection: SourceConnection
    if source_type is SourceType.postgres:
        connection = await PostgresConnection.open(parsed, statement_timeout)
    else:
        connection = await FileConnection.open(source_type, parsed, statement_timeout)
    try:
        yield connection
    finally:
        await connection.close()


async def check_source(settings: Settings, source_type: SourceType, url: str) -> None:
    """Connect and run a trivial query; a `SourceError` naming `config.url` if that fails."""
    async with open_source(
        settings, source_type, url, statement_timeout=CONNECT_TIMEOUT
    ) as connection:
        # SQLite opens any file lazily; reading its schema proves it is a database.
        probe: sa.Executable = (
            sa.text("SELECT count(*) FROM sqlite_master")
            if source_type is SourceType.sqlite
            else sa.select(sa.literal(1))
        )
        await connection.fetch(probe, field="config.url")
