"""PostgreSQL sources on asyncpg: one read-only transaction per connection, its statement
timeout set with `set_config('statement_timeout', …, true)` (a `SET LOCAL`), which bounds the
query and each `FETCH` of its server-side cursor. Column batches (the membership stream) come
through `COPY … TO STDOUT` when the result's types allow (`postgres_copy`), the connection busy
until the batches are read or closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import Compiled, SQLCompiler

from app.sources.copy_text import DECODERS, TEXT, ColumnDecoder, CopyTextReader
from app.sources.postgres_copy import CopyPipe, copy_column_batches, inline_statement
from app.sources.source_connection import (
    CONNECT_TIMEOUT,
    ColumnBatch,
    FetchedRows,
    SourceConnection,
    SourceError,
    fetched,
    sanitised_message,
)

#: Types whose COPY text depends on a session setting: dates and times read only in ISO style,
#: floats only when printed exactly (PostgreSQL 12 on, `extra_float_digits` at least 1). The
#: setting is read, never changed: a model's own casts to text depend on it.
DATE_TYPES = frozenset({"date", "timestamp", "timestamptz"})
FLOAT_TYPES = frozenset({"float4", "float8"})


class PostgresConnection(SourceConnection):
    def __init__(self, engine: AsyncEngine, connection: AsyncConnection, timeout: float) -> None:
        super().__init__(engine.dialect, engine.url, timeout)
        self._engine = engine
        self._connection = connection
        self._iso_dates = False  #: DateStyle prints ISO
        self._exact_floats = False  #: floats print their exact value
        self._aborted = False  #: a COPY was left mid-way: roll back before the next statement
        self._copy: asyncio.Future[Any] | None = None  #: the COPY running, if any

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
        result = await self._connection.execute(
            sa.select(
                sa.func.set_config("statement_timeout", self._timeout_setting, True),
                sa.func.set_config("TimeZone", "UTC", True),
                sa.func.current_setting("DateStyle"),
                sa.func.current_setting("extra_float_digits"),
                sa.func.current_setting("server_version_num"),
            )
        )
        _, _, date_style, float_digits, version = result.one()
        self._iso_dates = str(date_style).upper().startswith("ISO")
        self._exact_floats = int(version) >= 120000 and int(float_digits) >= 1

    @property
    def _timeout_setting(self) -> str:
        return str(int(self.timeout * 1000))

    async def _recover(self) -> None:
        try:
            await self._connection.rollback()
            await self._begin()
            self._aborted = False
        except Exception:  # the connection is gone; the next statement reports it
            pass

    def _failure(self, exc: Exception, field: str) -> SourceError:
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        return self.error(exc, field, timed_out=getattr(cause, "sqlstate", None) == "57014")

    async def fetch(self, statement: Executable, *, field: str = "query") -> FetchedRows:
        await self._settle()
        try:
            return fetched(await self._connection.execute(statement))
        except DBAPIError as exc:
            await self._recover()
            raise self._failure(exc, field) from None

    async def stream(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[Sequence[Sequence[Any]]]:
        """Straight from an asyncpg server-side cursor in the connection's transaction: rows
        through SQLAlchemy's async result cost about three times as much per row."""
        if not isinstance(statement, ClauseElement):
            raise TypeError("stream takes a SQLAlchemy statement")
        await self._settle()
        compiled = statement.compile(dialect=self.dialect)
        arguments = _positional_arguments(compiled, self.dialect)
        try:
            driver = await self._driver()
            cursor = await driver.cursor(compiled.string, *arguments)
            while batch := await cursor.fetch(batch_size):
                yield batch
        except (DBAPIError, asyncpg.PostgresError) as exc:
            await self._recover()
            raise self._failure(exc, field) from None
        except (ValueError, ArithmeticError) as exc:  # the driver could not decode a value
            await self._recover()
            raise _unreadable(exc, field) from None

    async def column_batches(
        self, statement: Executable, *, batch_size: int = 1000, field: str = "query"
    ) -> AsyncGenerator[ColumnBatch] | None:
        """Through `COPY (…) TO STDOUT` when every column's type has a text decoder and every
        bound value can be inlined (see `postgres_copy`), else None. The statement timeout
        bounds each wait for the server's next rows, not the whole COPY, and the connection
        runs nothing else until the batches are read or closed."""
        if not isinstance(statement, ClauseElement):
            raise TypeError("column_batches takes a SQLAlchemy statement")
        await self._settle()
        try:
            plan = await self._copy_plan(statement)
        except (DBAPIError, asyncpg.PostgresError) as exc:
            await self._recover()
            raise self._failure(exc, field) from None
        if plan is None:
            return None
        sql, reader = plan
        return self._copied(sql, reader, batch_size=batch_size, field=field)

    async def _copied(
        self, sql: str, reader: CopyTextReader, *, batch_size: int, field: str
    ) -> AsyncGenerator[ColumnBatch]:
        await self._settle()
        pipe = CopyPipe(patience=self.timeout)
        self._aborted = True  # until the COPY is over and the timeout back
        copying: asyncio.Future[Any] | None = None
        try:
            await self._set_timeout("0")
            driver = await self._driver()
            copying = self._copy = asyncio.ensure_future(
                driver.copy_from_query(sql, output=pipe.write)
            )
            copying.add_done_callback(lambda _: pipe.finish())
            batches = copy_column_batches(
                pipe,
                copying,
                reader,
                batch_size=batch_size,
                unreadable=lambda exc: _unreadable(exc, field),
            )
            async with aclosing(batches):
                async for batch in batches:
                    yield batch
        except BaseException as exc:
            if copying is not None and self._copy is not copying:  # stopped by `_settle`
                if isinstance(exc, GeneratorExit):
                    raise
                raise SourceError.at(field, "another statement interrupted the stream") from None
            await self._abandon(copying)
            if isinstance(exc, TimeoutError):  # the server sent nothing for a whole timeout
                raise self.error(exc, field, timed_out=True) from None
            if isinstance(exc, DBAPIError | asyncpg.PostgresError):
                raise self._failure(exc, field) from None
            if isinstance(exc, ValueError | ArithmeticError):  # a value that does not read
                raise _unreadable(exc, field) from None
            raise
        self._copy = None
        try:
            await self._set_timeout(self._timeout_setting)
        except DBAPIError as exc:
            await self._recover()
            raise self._failure(exc, field) from None
        self._aborted = False

    async def _copy_plan(self, statement: ClauseElement) -> tuple[str, CopyTextReader] | None:
        """The COPY's query and the reader of its columns, or None when the cursor must do."""
        sql = inline_statement(statement, self.dialect)
        if sql is None:
            return None
        driver = await self._driver()
        types = [attribute.type for attribute in (await driver.prepare(sql)).get_attributes()]
        custom = [t.oid for t in types if t.schema != "pg_catalog"]
        enums: set[int] = set()
        if custom:
            lookup = "SELECT oid FROM pg_catalog.pg_type WHERE typtype = 'e' AND oid = ANY($1)"
            enums = {row[0] for row in await driver.fetch(lookup, custom)}
        decoders: list[ColumnDecoder] = []
        for type_ in types:
            if type_.oid in enums:
                decoder: ColumnDecoder | None = TEXT  # asyncpg reads an enum as its label
            elif type_.schema == "pg_catalog" and type_.kind == "scalar":
                decoder = self._decoder(type_.name)
            else:
                decoder = None
            if decoder is None:
                return None
            decoders.append(decoder)
        layout = "\t".join(f"{t.schema}.{t.name}" for t in types) + "\n" + sql
        return sql, CopyTextReader(decoders, layout)

    def _decoder(self, type_name: str) -> ColumnDecoder | None:
        if type_name in DATE_TYPES and not self._iso_dates:
            return None
        if type_name in FLOAT_TYPES and not self._exact_floats:
            return None
        return DECODERS.get(type_name)

    async def _set_timeout(self, milliseconds: str) -> None:
        await self._connection.execute(
            sa.select(sa.func.set_config("statement_timeout", milliseconds, True))
        )

    async def _settle(self) -> None:
        """Before a statement: stop a COPY whose batches were left unread and unclosed, and
        roll back after one left mid-way."""
        if self._copy is not None:
            await self._abandon(self._copy)
        elif self._aborted:
            await self._recover()

    async def _abandon(self, copying: asyncio.Future[Any] | None) -> None:
        """Stop the COPY (asyncpg asks the server to cancel it) and roll the transaction back,
        so the connection is usable again; if this is itself interrupted, the next statement
        rolls back first."""
        self._aborted = True
        if self._copy is copying:
            self._copy = None
        if copying is None:
            pass
        elif not copying.done():
            copying.cancel()
            await asyncio.wait([copying])
        elif not copying.cancelled():
            copying.exception()  # retrieved: it is reported as a SourceError, or superseded
        await self._recover()

    async def _driver(self) -> Any:
        driver = (await self._connection.get_raw_connection()).driver_connection
        assert driver is not None, "the connection is closed"
        return driver

    async def close(self) -> None:
        copying, self._copy = self._copy, None
        try:
            if copying is not None and not copying.done():  # batches left unread and unclosed
                copying.cancel()
                await asyncio.wait([copying])
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


def _unreadable(exc: Exception, field: str) -> SourceError:
    """A value Python cannot hold (a date before year 1, say), on either way of reading."""
    return SourceError.at(field, f"a value could not be read: {exc}")
