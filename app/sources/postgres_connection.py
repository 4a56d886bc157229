"""PostgreSQL sources on asyncpg: one read-only transaction per connection, its statement
timeout set with `set_config('statement_timeout', …, true)` (a `SET LOCAL`), which bounds the
query and each `FETCH` of its server-side cursor."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import Compiled, SQLCompiler

from app.sources.source_connection import (
    CONNECT_TIMEOUT,
    FetchedRows,
    SourceConnection,
    SourceError,
    fetched,
    sanitised_message,
)


class PostgresConnection(SourceConnection):
    def __init__(self, engine: AsyncEngine, connection: AsyncConnection, timeout: float) -> None:
        super().__init__(engine.dialect, engine.url, timeout)
        self._engine = engine
        self._connection = connection

    @classmethod
    async def open(cls, url: URL, statement_timeout: float) -> PostgresConnection:
        engine = create_async_engine(
            url.set(drivername="postgresql+asyncpg"),
            poolclass=sa.NullPool,
            connect_args={
                "timeout": CONNECT_TIMEOUT,
                "server_settings": {
                    "default_transaction_read_only": "on",
                    "application_name": "signalsmith",
                },
            },
        )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + 1):
                connection = await engine.connect()
        except Exception as exc:  # every failure to connect is the source's configuration
            await engine.dispose()
            if isinstance(exc, TimeoutError):
                raise SourceError.at("config.url", "timed out connecting to the source") from None
            raise SourceError.at("config.url", sanitised_message(exc, url)) from None
        self = cls(engine, connection, statement_timeout)
        await self._begin()
        return self

    async def _begin(self) -> None:
        await self._connection.begin()
        await self._connection.execute(
            sa.select(
                sa.func.set_config("statement_timeout", str(int(self.timeout * 1000)), True),
                sa.func.set_config("TimeZone", "UTC", True),
            )
        )

    async def _recover(self) -> None:
        try:
            await self._connection.rollback()
            await self._begin()
        except Exception:  # the connection is gone; the next statement reports it
            pass

    def _failure(self, exc: Exception, field: str) -> SourceError:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return self.error(exc, field, timed_out=getattr(cause, "sqlstate", None) == "57014")

    async def fetch(self, statement: Executable, *, field: str = "query") -> FetchedRows:
        try:
            return fetched(await self._connection.execute(statement))
        except DBAPIError as exc:
            await self._recover()
            raise self._failure(exc, field) from None

    async def stream(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncIterator[Sequence[Sequence[Any]]]:
        """Straight from an asyncpg server-side cursor in the connection's transaction: rows
        through SQLAlchemy's async result cost about three times as much per row."""
        if not isinstance(statement, ClauseElement):
            raise TypeError("stream takes a SQLAlchemy statement")
        compiled = statement.compile(dialect=self.dialect)
        arguments = _positional_arguments(compiled, self.dialect)
        try:
            driver = (await self._connection.get_raw_connection()).driver_connection
            assert driver is not None, "the connection is closed"
            cursor = await driver.cursor(compiled.string, *arguments)
            while batch := await cursor.fetch(batch_size):
                yield batch
        except (DBAPIError, asyncpg.PostgresError) as exc:
            await self._recover()
            raise self._failure(exc, field) from None

    async def close(self) -> None:
        try:
            await self._connection.close()
        finally:
            await self._engine.dispose()


def _positional_arguments(compiled: Compiled, dialect: Dialect) -> list[Any]:
    """The bound values in `$n` order, through each type's bind processing for the dialect."""
    assert isinstance(compiled, SQLCompiler)
    values = compiled.construct_params()
    arguments = []
    for name in compiled.positiontup or ():
        process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        arguments.append(process(values[name]) if process else values[name])
    return arguments
